#include "face/human/common.h"

#include <cmath>

#include "core/error.h"
#include "face/human/models.h"

namespace avatar::face::human::detail {

torch::Tensor image_batch(const torch::Tensor& image, const std::string& what) {
    check(image.defined() && image.dim() == 3 && image.size(2) == 3 && image.size(0) > 0 &&
              image.size(1) > 0,
          what, "expected an RGB image [H, W, 3]");
    return image.to(models_device(), torch::kFloat32).unsqueeze(0);
}

torch::Tensor crop_box_yxyx(double y1, double x1, double y2, double x2, double height,
                            double width) {
    return torch::tensor({static_cast<float>(y1 / height), static_cast<float>(x1 / width),
                          static_cast<float>(y2 / height), static_cast<float>(x2 / width)},
                         torch::kFloat32)
        .view({1, 4});
}

double js_trunc(double v) {
    return std::trunc(v);
}

}  // namespace avatar::face::human::detail
