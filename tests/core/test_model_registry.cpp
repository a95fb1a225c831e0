#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/model_registry.h"
#include "core/safetensors.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;

// A toy model recognised by its tensor names, with its width read from a shape.
ModelSpec toy_spec(const std::string& name, const std::string& weights = "") {
    ModelSpec spec;
    spec.name = name;
    spec.engine = "test";
    spec.description = "toy linear model";
    spec.default_weights = weights;
    spec.detect = [](const SafetensorsFile& file) -> std::optional<nlohmann::json> {
        const auto out = tensor_dim(file, "toy.fc.weight", 0);
        const auto in = tensor_dim(file, "toy.fc.weight", 1);
        if (!out || !in)
            return std::nullopt;
        return nlohmann::json{{"in_features", *in}, {"out_features", *out}};
    };
    return spec;
}

TEST(ModelRegistry, DetectsConfigurationFromShapes) {
    ModelRegistry registry;
    registry.add(toy_spec("toy"));
    const fs::path path = fs::path(AVATAR_TEST_BINARY_DIR) / "registry" / "toy.safetensors";
    save_safetensors(path, TensorMap{{"toy.fc.weight", torch::zeros({7, 3})}});
    const auto detection = registry.detect(SafetensorsFile::open(path));
    ASSERT_TRUE(detection.has_value());
    EXPECT_EQ(detection->model, "toy");
    EXPECT_EQ(detection->config["in_features"], 3);
    EXPECT_EQ(detection->config["out_features"], 7);

    save_safetensors(path, TensorMap{{"other.weight", torch::zeros({2})}});
    EXPECT_FALSE(registry.detect(SafetensorsFile::open(path)).has_value());
}

TEST(ModelRegistry, NamesAndErrors) {
    ModelRegistry registry;
    registry.add(toy_spec("toy"));
    EXPECT_THROW(registry.add(toy_spec("toy")), Error);
    EXPECT_EQ(registry.names(), std::vector<std::string>{"toy"});
    try {
        registry.get("dpe");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), "dpe");
        EXPECT_NE(e.message().find("toy"), std::string::npos);  // lists the known names
    }
}

TEST(ModelRegistry, ResolvesShippedWeightsAndPaths) {
    const fs::path models = fs::path(AVATAR_TEST_BINARY_DIR) / "registry" / "models";
    fs::create_directories(models / "toy");
    save_safetensors(models / "toy" / "toy.safetensors",
                     TensorMap{{"toy.fc.weight", torch::zeros({1, 1})}});
    setenv("AVATAR_MODELS_DIR", models.c_str(), 1);
    ModelRegistry registry;
    registry.add(toy_spec("toy", "toy/toy.safetensors"));
    registry.add(toy_spec("no-weights"));
    EXPECT_EQ(registry.resolve_weights("toy"), models / "toy" / "toy.safetensors");
    const auto explicit_path = (models / "toy" / "toy.safetensors").string();
    EXPECT_EQ(registry.resolve_weights(explicit_path), explicit_path);
    EXPECT_THROW(registry.resolve_weights("no-weights"), Error);
    EXPECT_THROW(registry.resolve_weights("missing.safetensors"), Error);
    EXPECT_THROW(registry.resolve_weights("unknown-model"), Error);
    unsetenv("AVATAR_MODELS_DIR");
}

}  // namespace
}  // namespace avatar
