#pragma once
// Reading and writing safetensors files (https://github.com/huggingface/safetensors format):
//   8 bytes little-endian u64 N | N bytes of JSON header | data section.
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative
// to the data section) plus an optional "__metadata__" object of string -> string.
// The reader memory-maps the file and validates every field before any tensor is touched: header
// size, JSON syntax, dtype, shape, offsets inside the data section, byte counts that match
// dtype x shape, and (as the format requires) tensors that cover the data section without
// overlaps or holes. Any violation throws avatar::Error naming the file and the tensor.
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace avatar {

// Element types of the format that LibTorch can hold.
enum class SafetensorsDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(SafetensorsDType dtype);  // "F32", ...
size_t dtype_size(SafetensorsDType dtype);       // bytes per element
torch::ScalarType to_torch(SafetensorsDType dtype);
// Throws Error(subject, ...) for a torch dtype the format cannot hold.
SafetensorsDType from_torch(torch::ScalarType type, const std::string& subject);

struct TensorInfo {
    std::string name;
    SafetensorsDType dtype;
    std::vector<int64_t> shape;
    uint64_t begin = 0;  // byte offsets into the data section
    uint64_t end = 0;
    int64_t numel() const;
};

// The parsed, validated header of a safetensors byte buffer.
struct SafetensorsHeader {
    std::vector<TensorInfo> tensors;  // in data-section order (sorted by begin offset)
    std::map<std::string, std::string> metadata;
    uint64_t data_offset = 0;  // where the data section starts in the buffer (8 + N)
};

// Parses and validates a complete safetensors buffer of `size` bytes. `subject` names the source
// in error messages (usually the path). This is the function the fuzzer drives.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size,
                                           const std::string& subject);

// An open, validated safetensors file. Tensors alias the read-only mapping (zero copy when the
// data is aligned for its dtype, a copy otherwise); the mapping stays alive while any tensor or
// the file object refers to it.
class SafetensorsFile {
public:
    static SafetensorsFile open(const std::filesystem::path& path);
    // Wraps an in-memory buffer (tests, fuzzing, data received over the network).
    static SafetensorsFile from_bytes(std::vector<uint8_t> bytes, std::string subject);

    const std::string& subject() const { return subject_; }
    const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
    const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
    bool contains(const std::string& name) const;
    // Throws Error naming the file and tensor if absent.
    const TensorInfo& info(const std::string& name) const;
    // A CPU tensor of the file's dtype and shape. Read-only: clone() before writing into it.
    torch::Tensor get(const std::string& name) const;
    uint64_t data_bytes() const;  // size of the data section

private:
    struct Storage;
    SafetensorsFile(std::shared_ptr<Storage> storage, SafetensorsHeader header,
                    std::string subject);

    std::shared_ptr<Storage> storage_;
    SafetensorsHeader header_;
    std::map<std::string, size_t> index_;  // name -> position in header_.tensors
    std::string subject_;
};

using TensorMap = std::map<std::string, torch::Tensor>;

// Loads every tensor of a file (aliasing its mapping).
TensorMap load_safetensors(const std::filesystem::path& path);

// Writes tensors (any device, any layout; stored contiguous, little-endian) and metadata, in the
// order given, atomically: a temporary file renamed into place. Throws Error naming the path and
// tensor for an unsupported dtype or an I/O failure.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Makes `save_safetensors(path, {{"w", w}, {"b", b}})` unambiguous (and ordered as written).
void save_safetensors(const std::filesystem::path& path,
                      std::initializer_list<std::pair<std::string, torch::Tensor>> tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace avatar
