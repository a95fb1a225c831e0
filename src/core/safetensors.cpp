#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/files.h"

// The format stores little-endian values and so does this code, byte for byte.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes little-endian");

namespace avatar {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Same cap as the reference implementation: a larger header is an attack, not a model.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Our schema nests at most three levels ({name: {shape: [...]}}); anything deeper is rejected
// while parsing, before a hostile header can allocate a deep tree.
constexpr int kMaxJsonDepth = 4;

struct DTypeEntry {
    SafetensorsDType dtype;
    const char* name;
    size_t size;
    torch::ScalarType torch_type;
};

constexpr DTypeEntry kDTypes[] = {
    {SafetensorsDType::F64, "F64", 8, torch::kFloat64},
    {SafetensorsDType::F32, "F32", 4, torch::kFloat32},
    {SafetensorsDType::F16, "F16", 2, torch::kFloat16},
    {SafetensorsDType::BF16, "BF16", 2, torch::kBFloat16},
    {SafetensorsDType::I64, "I64", 8, torch::kInt64},
    {SafetensorsDType::I32, "I32", 4, torch::kInt32},
    {SafetensorsDType::I16, "I16", 2, torch::kInt16},
    {SafetensorsDType::I8, "I8", 1, torch::kInt8},
    {SafetensorsDType::U8, "U8", 1, torch::kUInt8},
    {SafetensorsDType::BOOL, "BOOL", 1, torch::kBool},
};

const DTypeEntry& entry(SafetensorsDType dtype) {
    for (const auto& e : kDTypes) {
        if (e.dtype == dtype)
            return e;
    }
    throw Error("safetensors", "invalid dtype enum value");
}

// Names of the format that LibTorch cannot hold; they get a clearer message than "unknown".
bool is_known_unsupported(const std::string& name) {
    static const std::set<std::string> names = {"U16",     "U32",       "U64",     "F8_E5M2",
                                                "F8_E4M3", "F8_E4M3FN", "F8_E8M0", "F6_E2M3",
                                                "F6_E3M2", "F4",        "C64",     "C128"};
    return names.count(name) > 0;
}

std::string quoted(const std::string& name) {
    return "tensor '" + name + "'";
}

// Rejects duplicate keys at every level (nlohmann silently keeps the last one, and the format
// forbids duplicate tensor names) and nesting deeper than our schema allows.
class StrictParseCallback {
public:
    explicit StrictParseCallback(const std::string& subject) : subject_(subject) {}

    bool operator()(int depth, json::parse_event_t event, json& parsed) {
        if (depth > kMaxJsonDepth)
            throw Error(subject_, "header JSON is nested too deeply");
        switch (event) {
            case json::parse_event_t::object_start:
                keys_.emplace_back();
                break;
            case json::parse_event_t::object_end:
                if (!keys_.empty())
                    keys_.pop_back();
                break;
            case json::parse_event_t::key:
                if (!keys_.empty() && !keys_.back().insert(parsed.get<std::string>()).second) {
                    throw Error(subject_,
                                "duplicate key '" + parsed.get<std::string>() + "' in header");
                }
                break;
            default:
                break;
        }
        return true;
    }

private:
    const std::string& subject_;
    std::vector<std::set<std::string>> keys_;
};

// A JSON value as an unsigned 64-bit integer, or an error (floats, negatives, strings...).
uint64_t as_u64(const json& value, const std::string& subject, const std::string& what) {
    if (value.is_number_unsigned())
        return value.get<uint64_t>();
    if (value.is_number_integer() && value.get<int64_t>() >= 0) {
        return static_cast<uint64_t>(value.get<int64_t>());
    }
    throw Error(subject, what + " must be a non-negative integer, got " + value.dump());
}

TensorInfo parse_entry(const std::string& name, const json& value, const std::string& subject) {
    const std::string who = quoted(name);
    check(value.is_object(), subject, who + ": header entry must be an object");
    for (const auto& item : value.items()) {
        check(item.key() == "dtype" || item.key() == "shape" || item.key() == "data_offsets",
              subject, who + ": unexpected field '" + item.key() + "'");
    }
    check(value.size() == 3, subject, who + ": entry needs exactly dtype, shape and data_offsets");

    TensorInfo info;
    info.name = name;
    const json& dtype = value.at("dtype");
    check(dtype.is_string(), subject, who + ": dtype must be a string");
    const auto dtype_str = dtype.get<std::string>();
    bool found = false;
    for (const auto& e : kDTypes) {
        if (dtype_str == e.name) {
            info.dtype = e.dtype;
            found = true;
        }
    }
    if (!found) {
        throw Error(subject, who + ": dtype " + dtype_str +
                                 (is_known_unsupported(dtype_str) ? " is not supported by LibTorch"
                                                                  : " is not a safetensors dtype"));
    }

    const json& shape = value.at("shape");
    check(shape.is_array(), subject, who + ": shape must be an array");
    uint64_t numel = 1;
    // LibTorch computes contiguous strides as products of the non-zero sizes, so those must not
    // overflow either, even when a zero size makes the tensor empty.
    uint64_t stride_span = dtype_size(info.dtype);
    for (const auto& dim : shape) {
        const uint64_t d = as_u64(dim, subject, who + ": shape entry");
        check(!__builtin_mul_overflow(numel, d, &numel), subject,
              who + ": shape product overflows");
        check(!__builtin_mul_overflow(stride_span, std::max<uint64_t>(d, 1), &stride_span) &&
                  stride_span <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
              subject, who + ": shape product overflows");
        info.shape.push_back(static_cast<int64_t>(d));
    }
    uint64_t bytes = 0;
    check(!__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(info.dtype)), &bytes),
          subject, who + ": byte size overflows");

    const json& offsets = value.at("data_offsets");
    check(offsets.is_array() && offsets.size() == 2, subject,
          who + ": data_offsets must be [begin, end]");
    info.begin = as_u64(offsets[0], subject, who + ": data_offsets");
    info.end = as_u64(offsets[1], subject, who + ": data_offsets");
    check(info.begin <= info.end, subject, who + ": data_offsets end before begin");
    check(info.end - info.begin == bytes, subject,
          who + ": data_offsets span " + std::to_string(info.end - info.begin) +
              " bytes, but dtype x shape needs " + std::to_string(bytes));
    return info;
}

}  // namespace

const char* dtype_name(SafetensorsDType dtype) {
    return entry(dtype).name;
}
size_t dtype_size(SafetensorsDType dtype) {
    return entry(dtype).size;
}
torch::ScalarType to_torch(SafetensorsDType dtype) {
    return entry(dtype).torch_type;
}

SafetensorsDType from_torch(torch::ScalarType type, const std::string& subject) {
    for (const auto& e : kDTypes) {
        if (e.torch_type == type)
            return e.dtype;
    }
    throw Error(subject,
                std::string("dtype ") + c10::toString(type) + " cannot be stored in safetensors");
}

int64_t TensorInfo::numel() const {
    int64_t n = 1;
    for (const auto d : shape)
        n *= d;  // validated not to overflow by the parser
    return n;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size,
                                           const std::string& subject) {
    check(size >= 8, subject,
          "file too short for a safetensors header (" + std::to_string(size) + " bytes)");
    uint64_t header_len = 0;
    std::memcpy(&header_len, data, 8);
    check(header_len <= kMaxHeaderBytes, subject,
          "header length " + std::to_string(header_len) +
              " exceeds the 100 MB limit: not a safetensors file?");
    check(header_len <= size - 8, subject,
          "header length " + std::to_string(header_len) + " runs past the end of the file (" +
              std::to_string(size) + " bytes): truncated or not a safetensors file");
    check(header_len >= 1 && data[8] == '{', subject, "header does not start with a JSON object");

    json header;
    try {
        StrictParseCallback callback(subject);
        header = json::parse(data + 8, data + 8 + header_len, std::ref(callback));
    } catch (const json::exception& e) {
        throw Error(subject, std::string("header is not valid JSON: ") + e.what());
    }
    check(header.is_object(), subject, "header must be a JSON object");

    SafetensorsHeader result;
    result.data_offset = 8 + header_len;
    for (const auto& item : header.items()) {
        if (item.key() == "__metadata__") {
            check(item.value().is_object(), subject, "__metadata__ must be an object");
            for (const auto& meta : item.value().items()) {
                check(meta.value().is_string(), subject,
                      "__metadata__ value of '" + meta.key() + "' must be a string");
                result.metadata.emplace(meta.key(), meta.value().get<std::string>());
            }
            continue;
        }
        result.tensors.push_back(parse_entry(item.key(), item.value(), subject));
    }

    // The format requires the tensors to tile the data section exactly: sorted by offset, each
    // begins where the previous one ends, and the last ends at the end of the file.
    std::stable_sort(result.tensors.begin(), result.tensors.end(),
                     [](const TensorInfo& a, const TensorInfo& b) {
                         return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                     });
    const uint64_t data_bytes = size - result.data_offset;
    uint64_t cursor = 0;
    for (const auto& t : result.tensors) {
        check(
            t.begin == cursor, subject,
            quoted(t.name) + (t.begin < cursor ? ": overlaps the previous tensor"
                                               : ": leaves a hole before it in the data section"));
        cursor = t.end;
    }
    check(cursor == data_bytes, subject,
          "tensors cover " + std::to_string(cursor) + " bytes but the data section has " +
              std::to_string(data_bytes) + " bytes");
    return result;
}

// ---------------------------------------------------------------------------------------------

// The bytes behind a file: a read-only memory mapping, or an owned buffer.
struct SafetensorsFile::Storage {
    const uint8_t* data = nullptr;
    size_t size = 0;
    void* mapping = nullptr;  // non-null when mmap'ed
    std::vector<uint8_t> buffer;

    Storage() = default;
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
    ~Storage() {
        if (mapping != nullptr)
            ::munmap(mapping, size);
    }
};

SafetensorsFile::SafetensorsFile(std::shared_ptr<Storage> storage, SafetensorsHeader header,
                                 std::string subject)
    : storage_(std::move(storage)), header_(std::move(header)), subject_(std::move(subject)) {
    for (size_t i = 0; i < header_.tensors.size(); ++i)
        index_[header_.tensors[i].name] = i;
}

SafetensorsFile SafetensorsFile::open(const fs::path& path) {
    const std::string subject = path.string();
    require_regular_file(path);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    check(fd >= 0, subject, std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw Error(subject, std::string("cannot stat: ") + std::strerror(err));
    }
    auto storage = std::make_shared<Storage>();
    storage->size = static_cast<size_t>(st.st_size);
    if (storage->size < 8) {
        ::close(fd);
        throw Error(subject, "file too short for a safetensors header (" +
                                 std::to_string(storage->size) + " bytes)");
    }
    void* mapping = ::mmap(nullptr, storage->size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_errno = errno;
    ::close(fd);  // the mapping keeps the file alive
    check(mapping != MAP_FAILED, subject,
          std::string("cannot memory-map: ") + std::strerror(map_errno));
    storage->mapping = mapping;
    storage->data = static_cast<const uint8_t*>(mapping);
    auto header = parse_safetensors_header(storage->data, storage->size, subject);
    return SafetensorsFile(std::move(storage), std::move(header), subject);
}

SafetensorsFile SafetensorsFile::from_bytes(std::vector<uint8_t> bytes, std::string subject) {
    auto storage = std::make_shared<Storage>();
    storage->buffer = std::move(bytes);
    storage->data = storage->buffer.data();
    storage->size = storage->buffer.size();
    auto header = parse_safetensors_header(storage->data, storage->size, subject);
    return SafetensorsFile(std::move(storage), std::move(header), std::move(subject));
}

bool SafetensorsFile::contains(const std::string& name) const {
    return index_.count(name) > 0;
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
    const auto it = index_.find(name);
    check(it != index_.end(), subject_, "no " + quoted(name) + " in this file");
    return header_.tensors[it->second];
}

uint64_t SafetensorsFile::data_bytes() const {
    return storage_->size - header_.data_offset;
}

torch::Tensor SafetensorsFile::get(const std::string& name) const {
    const TensorInfo& t = info(name);
    const auto options = torch::TensorOptions().dtype(to_torch(t.dtype));
    if (t.begin == t.end)
        return torch::empty(t.shape, options);

    const uint8_t* bytes = storage_->data + header_.data_offset + t.begin;
    const size_t count = t.end - t.begin;
    if (t.dtype == SafetensorsDType::BOOL) {
        // Any byte other than 0 or 1 is not a valid bool; LibTorch would misbehave on it.
        for (size_t i = 0; i < count; ++i) {
            check(bytes[i] <= 1, subject_, quoted(name) + ": BOOL byte that is neither 0 nor 1");
        }
    }
    const size_t align = dtype_size(t.dtype);
    if (reinterpret_cast<uintptr_t>(bytes) % align != 0) {
        // A misaligned typed pointer is undefined behaviour (and slow on some CPUs): copy.
        auto copy = torch::empty(t.shape, options);
        std::memcpy(copy.data_ptr(), bytes, count);
        return copy;
    }
    auto storage = storage_;  // the deleter keeps the mapping alive as long as the tensor
    return torch::from_blob(
        const_cast<uint8_t*>(bytes), t.shape, [storage](void*) mutable { storage.reset(); },
        options);
}

TensorMap load_safetensors(const fs::path& path) {
    const auto file = SafetensorsFile::open(path);
    TensorMap tensors;
    for (const auto& t : file.tensors())
        tensors.emplace(t.name, file.get(t.name));
    return tensors;
}

// ---------------------------------------------------------------------------------------------

void save_safetensors(const fs::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    const std::string subject = path.string();
    // Prepare every tensor (CPU, contiguous) before touching the disk, so that an unsupported
    // input fails without leaving a temporary file.
    std::vector<torch::Tensor> prepared;
    prepared.reserve(tensors.size());
    std::set<std::string> names;
    // The header is built in the given order; nlohmann's ordered_json keeps it, like the
    // reference writer, which puts __metadata__ first.
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty())
        header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const auto& [name, tensor] : tensors) {
        const std::string who = quoted(name);
        check(name != "__metadata__", subject, "'__metadata__' cannot name a tensor");
        check(names.insert(name).second, subject, who + " is given twice");
        check(tensor.defined(), subject, who + " is undefined");
        check(tensor.layout() == torch::kStrided, subject,
              who + ": only dense (strided) tensors can be saved");
        const auto dtype = from_torch(tensor.scalar_type(), subject + ": " + who);
        auto cpu = tensor.detach().to(torch::kCPU).contiguous();
        const uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * dtype_size(dtype);
        header[name] = {{"dtype", dtype_name(dtype)},
                        {"shape", cpu.sizes().vec()},
                        {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
        prepared.push_back(std::move(cpu));
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception&) {
        throw Error(subject, "a tensor name or metadata string is not valid UTF-8");
    }
    // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
    text.append((8 - text.size() % 8) % 8, ' ');
    const uint64_t header_len = text.size();

    AtomicOutput output(path);
    {
        std::ofstream out(output.temp_path(), std::ios::binary | std::ios::trunc);
        check(out.good(), subject, std::string("cannot create: ") + std::strerror(errno));
        out.write(reinterpret_cast<const char*>(&header_len), 8);
        out.write(text.data(), static_cast<std::streamsize>(text.size()));
        for (const auto& t : prepared) {
            const auto bytes = static_cast<std::streamsize>(t.numel() * t.element_size());
            if (bytes > 0)
                out.write(static_cast<const char*>(t.data_ptr()), bytes);
        }
        out.flush();
        check(out.good(), subject, "write error (disk full?)");
    }
    output.commit();
}

void save_safetensors(const fs::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata) {
    save_safetensors(
        path, std::vector<std::pair<std::string, torch::Tensor>>(tensors.begin(), tensors.end()),
        metadata);
}

void save_safetensors(const fs::path& path,
                      std::initializer_list<std::pair<std::string, torch::Tensor>> tensors,
                      const std::map<std::string, std::string>& metadata) {
    save_safetensors(path, std::vector<std::pair<std::string, torch::Tensor>>(tensors), metadata);
}

}  // namespace avatar
