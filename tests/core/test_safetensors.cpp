#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/safetensors.h"
#include "scratch_dir.h"

namespace avatar {
namespace {
namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

fs::path test_dir(const std::string& name) {
    return avatar::testing::fresh_dir("safetensors", name);
}

// Builds a file the way the format spec describes it, independently of our writer.
Bytes assemble(const std::string& header, const Bytes& data) {
    const uint64_t n = header.size();
    Bytes bytes(8 + header.size() + data.size());
    std::memcpy(bytes.data(), &n, 8);
    std::copy(header.begin(), header.end(), bytes.begin() + 8);
    std::copy(data.begin(), data.end(), bytes.begin() + 8 + static_cast<ptrdiff_t>(header.size()));
    return bytes;
}

// One tensor of every supported dtype, with values that exercise the whole range of each.
std::vector<std::pair<std::string, torch::Tensor>> every_dtype() {
    torch::manual_seed(7);
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    tensors.emplace_back("f64", torch::randn({3, 2}, torch::kFloat64));
    tensors.emplace_back("f32", torch::randn({2, 3, 4}));
    tensors.emplace_back("f16", torch::randn({5}).to(torch::kFloat16));
    tensors.emplace_back("bf16", torch::randn({3, 3}).to(torch::kBFloat16));
    tensors.emplace_back("i64", torch::tensor({std::numeric_limits<int64_t>::min(), int64_t{0},
                                               std::numeric_limits<int64_t>::max()}));
    tensors.emplace_back("i32", torch::randint(-1000000, 1000000, {7}, torch::kInt32));
    tensors.emplace_back("i16", torch::randint(-30000, 30000, {2, 2}, torch::kInt16));
    tensors.emplace_back("i8", torch::randint(-128, 127, {9}, torch::kInt8));
    tensors.emplace_back("u8", torch::randint(0, 255, {4, 1}, torch::kUInt8));
    tensors.emplace_back("bool", torch::rand({6}) > 0.5);
    tensors.emplace_back("scalar", torch::tensor(3.5));  // shape []
    tensors.emplace_back("empty", torch::zeros({0, 4}));
    tensors.emplace_back("empty_i8", torch::zeros({2, 0}, torch::kInt8));
    // Non-contiguous inputs: a transpose and a strided slice.
    tensors.emplace_back("transposed", torch::arange(12, torch::kFloat32).reshape({3, 4}).t());
    tensors.emplace_back("sliced", torch::arange(20, torch::kInt64).slice(0, 1, 20, 3));
    return tensors;
}

TEST(Safetensors, DTypeTable) {
    EXPECT_STREQ(dtype_name(SafetensorsDType::BF16), "BF16");
    EXPECT_EQ(dtype_size(SafetensorsDType::F64), 8u);
    EXPECT_EQ(dtype_size(SafetensorsDType::BOOL), 1u);
    EXPECT_EQ(to_torch(SafetensorsDType::I16), torch::kInt16);
    EXPECT_EQ(from_torch(torch::kUInt8, "x"), SafetensorsDType::U8);
    EXPECT_THROW(from_torch(torch::kComplexFloat, "x"), Error);
}

TEST(Safetensors, RoundTripEveryDTypeWithMetadata) {
    const auto path = test_dir("round_trip") / "all.safetensors";
    const auto tensors = every_dtype();
    const std::map<std::string, std::string> metadata = {
        {"source", "test"}, {"config", R"({"a": [1, 2]})"}, {"unicode", "ünï ✓"}};
    save_safetensors(path, tensors, metadata);

    const auto file = SafetensorsFile::open(path);
    EXPECT_EQ(file.metadata(), metadata);
    ASSERT_EQ(file.tensors().size(), tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto& [name, expected] = tensors[i];
        // Written in the order given, so the data-section order is the input order.
        EXPECT_EQ(file.tensors()[i].name, name);
        ASSERT_TRUE(file.contains(name));
        const auto loaded = file.get(name);
        EXPECT_EQ(loaded.scalar_type(), expected.scalar_type()) << name;
        EXPECT_EQ(loaded.sizes(), expected.sizes()) << name;
        EXPECT_TRUE(torch::equal(loaded, expected)) << name;
    }
    EXPECT_EQ(file.info("scalar").shape.size(), 0u);
    EXPECT_EQ(file.info("scalar").numel(), 1);
    EXPECT_EQ(file.info("empty").numel(), 0);

    const auto all = load_safetensors(path);
    EXPECT_EQ(all.size(), tensors.size());
    EXPECT_TRUE(torch::equal(all.at("bf16"), tensors[3].second));
}

TEST(Safetensors, MapOverloadAndNoMetadata) {
    const auto path = test_dir("map") / "m.safetensors";
    TensorMap tensors = {{"b", torch::ones({2})}, {"a", torch::zeros({1}, torch::kInt32)}};
    save_safetensors(path, tensors);
    const auto file = SafetensorsFile::open(path);
    EXPECT_TRUE(file.metadata().empty());
    EXPECT_EQ(file.tensors()[0].name, "a");  // map order
    EXPECT_TRUE(torch::equal(file.get("b"), tensors["b"]));
}

TEST(Safetensors, EmptyFileHasNoTensors) {
    const auto path = test_dir("empty") / "e.safetensors";
    save_safetensors(path, TensorMap{});
    const auto bytes = read_file(path);
    EXPECT_EQ(bytes.size(), 16u);  // length + "{}" padded to 8
    EXPECT_TRUE(SafetensorsFile::open(path).tensors().empty());
}

TEST(Safetensors, TensorsOutliveTheFileObject) {
    const auto path = test_dir("lifetime") / "l.safetensors";
    save_safetensors(path, {{"w", torch::arange(1000, torch::kFloat32)}});
    torch::Tensor w;
    {
        const auto file = SafetensorsFile::open(path);
        w = file.get("w");
    }
    fs::remove(path);  // the mapping keeps the data even when the file name is gone
    EXPECT_EQ(w[999].item<float>(), 999.0f);
}

TEST(Safetensors, MisalignedDataIsCopied) {
    // A 1-byte tensor first puts the F32 tensor at an odd address in the data section.
    const auto path = test_dir("misaligned") / "m.safetensors";
    const auto f = torch::arange(5, torch::kFloat32);
    save_safetensors(path, {{"a", torch::tensor({7}, torch::kUInt8)}, {"f", f}});
    const auto file = SafetensorsFile::open(path);
    const auto loaded = file.get("f");
    EXPECT_EQ(reinterpret_cast<uintptr_t>(loaded.data_ptr()) % 4, 0u);
    EXPECT_TRUE(torch::equal(loaded, f));
}

TEST(Safetensors, WriterMatchesTheReferenceLayoutByteForByte) {
    // Hand-assembled as the reference (Rust/Python) writer lays it out: compact JSON with
    // __metadata__ first and dtype/shape/data_offsets in that order, space padding to 8 bytes.
    const std::string json =
        R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],)"
        R"("data_offsets":[0,16]},"b":{"dtype":"I16","shape":[3],"data_offsets":[16,22]}})";
    std::string header = json;
    header.append((8 - header.size() % 8) % 8, ' ');
    Bytes data(22);
    const float w[] = {1.0f, -2.0f, 0.5f, 3.25f};
    const int16_t b[] = {-1, 2, 300};
    std::memcpy(data.data(), w, 16);
    std::memcpy(data.data() + 16, b, 6);
    const auto expected = assemble(header, data);

    const auto path = test_dir("byte_exact") / "x.safetensors";
    save_safetensors(path,
                     {{"w", torch::tensor({1.0f, -2.0f, 0.5f, 3.25f}).reshape({2, 2})},
                      {"b", torch::tensor({-1, 2, 300}, torch::kInt16)}},
                     {{"format", "pt"}});
    EXPECT_EQ(read_file(path), expected);

    // ... and the reader takes the hand-made bytes as they are.
    const auto file = SafetensorsFile::from_bytes(expected, "hand-made");
    EXPECT_EQ(file.metadata().at("format"), "pt");
    EXPECT_TRUE(torch::equal(file.get("b"), torch::tensor({-1, 2, 300}, torch::kInt16)));
    EXPECT_EQ(file.get("w")[1][1].item<float>(), 3.25f);
}

TEST(Safetensors, ReaderAcceptsUnpaddedHeadersAndAnyKeyOrder) {
    const std::string header = R"({"b":{"data_offsets":[4,5],"shape":[],"dtype":"U8"},)"
                               R"("a":{"shape":[1],"dtype":"I32","data_offsets":[0,4]}})";
    const auto file = SafetensorsFile::from_bytes(assemble(header, {1, 0, 0, 0, 9}), "t");
    ASSERT_EQ(file.tensors().size(), 2u);
    EXPECT_EQ(file.tensors()[0].name, "a");  // sorted by offset
    EXPECT_EQ(file.get("a").item<int32_t>(), 1);
    EXPECT_EQ(file.get("b").item<uint8_t>(), 9);
}

// Expects Error whose subject is "bad" and whose message contains `needle`.
void expect_rejected(const std::string& header, const Bytes& data, const std::string& needle) {
    try {
        SafetensorsFile::from_bytes(assemble(header, data), "bad");
        ADD_FAILURE() << "accepted: " << header;
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), "bad");
        EXPECT_NE(e.message().find(needle), std::string::npos)
            << "message '" << e.message() << "' lacks '" << needle << "'";
    }
}

TEST(Safetensors, MalformedHeadersAreNamedErrors) {
    const Bytes four(4);
    expect_rejected("[]", {}, "JSON object");
    expect_rejected("{", {}, "not valid JSON");
    expect_rejected(R"({"a":1})", {}, "must be an object");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[1]}})", four, "exactly");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", four,
                    "unexpected field 'x'");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                    four, "duplicate");
    expect_rejected(R"({"a":{"dtype":"U16","shape":[2],"data_offsets":[0,4]}})", four,
                    "tensor 'a': dtype U16 is not supported");
    expect_rejected(R"({"a":{"dtype":"U32","shape":[1],"data_offsets":[0,4]}})", four, "U32");
    expect_rejected(R"({"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", four,
                    "F8_E4M3");
    expect_rejected(R"({"a":{"dtype":"Q4","shape":[4],"data_offsets":[0,4]}})", four,
                    "not a safetensors dtype");
    expect_rejected(R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", four, "string");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", four,
                    "non-negative");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", four,
                    "non-negative integer");
    expect_rejected(R"({"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", four, "array");
    expect_rejected(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],)"
                    R"("data_offsets":[0,4]}})",
                    four, "overflow");
    expect_rejected(R"({"a":{"dtype":"F64","shape":[2305843009213693952],)"
                    R"("data_offsets":[0,4]}})",
                    four, "overflow");
    // Empty, but LibTorch's strides for it would overflow.
    expect_rejected(R"({"a":{"dtype":"F32","shape":[0,4611686018427387904,8],)"
                    R"("data_offsets":[0,0]}})",
                    {}, "overflow");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", four, "needs 8");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", four,
                    "end before begin");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", four, "[begin");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", Bytes(8), "hole");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                    Bytes(8), "overlaps");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", Bytes(6),
                    "data section has 6");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", four,
                    "data section has 4");
    expect_rejected(R"({"__metadata__":{"k":1}})", {}, "must be a string");
    expect_rejected(R"({"__metadata__":[]})", {}, "must be an object");
    expect_rejected(R"({"a":{"dtype":"F32","shape":[[[[[1]]]]],"data_offsets":[0,4]}})", four,
                    "nested");
    expect_rejected(R"({"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", {}, "data");
}

TEST(Safetensors, InvalidBoolBytesAreRejectedOnRead) {
    const auto file = SafetensorsFile::from_bytes(
        assemble(R"({"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", {1, 2}), "bad");
    EXPECT_THROW(file.get("m"), Error);
}

TEST(Safetensors, LengthFieldAndTruncation) {
    auto ok = assemble(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", {5});
    EXPECT_NO_THROW(SafetensorsFile::from_bytes(ok, "ok"));
    for (size_t size = 0; size < ok.size(); ++size) {
        EXPECT_THROW(SafetensorsFile::from_bytes(Bytes(ok.begin(), ok.begin() + size), "t"), Error)
            << size;
    }
    auto huge = ok;
    const uint64_t n = 200'000'000;
    std::memcpy(huge.data(), &n, 8);
    expect_rejected("", {}, "does not start");
    expect_rejected(" {}", {}, "does not start");  // the reference reader insists on '{' too
    try {
        SafetensorsFile::from_bytes(huge, "bad");
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(e.message().find("100 MB"), std::string::npos);
    }
    const uint64_t max = std::numeric_limits<uint64_t>::max();
    std::memcpy(huge.data(), &max, 8);
    EXPECT_THROW(SafetensorsFile::from_bytes(huge, "bad"), Error);
}

TEST(Safetensors, OpenErrorsNameThePath) {
    const auto dir = test_dir("open_errors");
    try {
        SafetensorsFile::open(dir / "missing.safetensors");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), (dir / "missing.safetensors").string());
    }
    const auto tiny = dir / "tiny.safetensors";
    write_file_atomic(tiny, "abc", 3);
    try {
        SafetensorsFile::open(tiny);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), tiny.string());
    }
    try {
        SafetensorsFile::open(dir);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), dir.string());
    }
    const auto file = SafetensorsFile::from_bytes(assemble(R"({})", {}), "named");
    try {
        file.get("nope");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.subject(), "named");
        EXPECT_NE(e.message().find("nope"), std::string::npos);
    }
}

TEST(Safetensors, WriterRejectsWhatTheFormatCannotHold) {
    const auto dir = test_dir("writer_errors");
    const auto path = dir / "w.safetensors";
    EXPECT_THROW(save_safetensors(path, {{"c", torch::zeros({2}, torch::kComplexFloat)}}), Error);
    EXPECT_THROW(save_safetensors(path, {{"u", torch::Tensor()}}), Error);
    EXPECT_THROW(save_safetensors(path, {{"a", torch::ones(1)}, {"a", torch::ones(1)}}), Error);
    EXPECT_THROW(save_safetensors(path, {{"__metadata__", torch::ones(1)}}), Error);
    EXPECT_THROW(save_safetensors(path, {{std::string("\xff\xfe"), torch::ones(1)}}), Error);
    EXPECT_FALSE(fs::exists(path));
    EXPECT_TRUE(fs::is_empty(dir));  // no temporary file left behind
}

TEST(Safetensors, OpensEverySharedReferenceFile) {
    const fs::path reference = fs::path(AVATAR_SHARED_DIR) / "reference";
    if (!fs::is_directory(reference))
        GTEST_SKIP() << "no " << reference;
    int files = 0;
    for (const auto& item : fs::recursive_directory_iterator(reference)) {
        if (item.path().extension() != ".safetensors")
            continue;
        SCOPED_TRACE(item.path().string());
        const auto file = SafetensorsFile::open(item.path());
        for (const auto& t : file.tensors()) {
            const auto tensor = file.get(t.name);
            ASSERT_EQ(tensor.sizes().vec(), t.shape);
        }
        // Round trip through our writer: same tensors, same metadata.
        const auto copy = test_dir("reference_copy") / "copy.safetensors";
        std::vector<std::pair<std::string, torch::Tensor>> tensors;
        for (const auto& t : file.tensors())
            tensors.emplace_back(t.name, file.get(t.name));
        save_safetensors(copy, tensors, file.metadata());
        const auto again = SafetensorsFile::open(copy);
        EXPECT_EQ(again.metadata(), file.metadata());
        for (const auto& t : file.tensors()) {
            EXPECT_TRUE(torch::equal(again.get(t.name), file.get(t.name))) << t.name;
        }
        ++files;
    }
    EXPECT_GT(files, 0);
}

// ---------------------------------------------------------------------------------------------
// Corruption: every mutated file must either load completely or throw avatar::Error.

Bytes valid_sample() {
    const std::string header =
        R"({"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
        R"("h":{"dtype":"F16","shape":[3],"data_offsets":[24,30]},)"
        R"("i":{"dtype":"I64","shape":[1],"data_offsets":[30,38]},)"
        R"("b":{"dtype":"BOOL","shape":[2],"data_offsets":[38,40]},)"
        R"("e":{"dtype":"BF16","shape":[0,2],"data_offsets":[40,40]},)"
        R"("s":{"dtype":"I8","shape":[],"data_offsets":[40,41]}})";
    Bytes data(41);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>(i * 37);
    data[38] = 1;
    data[39] = 0;
    return assemble(header, data);
}

// Returns "" when the bytes load (or are rejected with avatar::Error); a description otherwise.
std::string try_load(const Bytes& bytes) {
    try {
        const auto file = SafetensorsFile::from_bytes(bytes, "fuzz");
        for (const auto& t : file.tensors()) {
            const auto tensor = file.get(t.name);
            if (tensor.sizes().vec() != t.shape)
                return "shape mismatch for " + t.name;
            if (tensor.numel() > 0)
                (void)tensor.to(torch::kFloat64).sum().item<double>();
        }
    } catch (const Error&) {
    } catch (const std::exception& e) {
        return std::string("non-avatar exception: ") + e.what();
    }
    return "";
}

TEST(Safetensors, ThousandsOfRandomCorruptionsFailCleanly) {
    const Bytes valid = valid_sample();
    ASSERT_EQ(try_load(valid), "");
    const uint64_t header_len = valid.size() - 8 - 41;
    std::mt19937_64 rng(20240521);
    auto pick = [&rng](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };

    int cases = 0;
    int accepted = 0;
    auto run = [&](const Bytes& bytes, const std::string& what) {
        const auto failure = try_load(bytes);
        ASSERT_EQ(failure, "") << what;
        ++cases;
        try {
            SafetensorsFile::from_bytes(bytes, "count");
            ++accepted;
        } catch (const Error&) {
        }
    };

    // Truncation at every length, and extension by a few bytes.
    for (size_t size = 0; size <= valid.size() + 3; ++size) {
        Bytes bytes(valid.begin(), valid.begin() + std::min(size, valid.size()));
        bytes.resize(size, 0);
        run(bytes, "size " + std::to_string(size));
    }
    // Edits of the length field: small deltas, random values, extremes.
    for (int delta = -16; delta <= 16; ++delta) {
        Bytes bytes = valid;
        const uint64_t n = header_len + static_cast<uint64_t>(delta);
        std::memcpy(bytes.data(), &n, 8);
        run(bytes, "length delta " + std::to_string(delta));
    }
    for (int i = 0; i < 200; ++i) {
        Bytes bytes = valid;
        uint64_t n = rng() >> pick(64);
        std::memcpy(bytes.data(), &n, 8);
        run(bytes, "length " + std::to_string(n));
    }
    // Bit flips and byte overwrites anywhere (header and data), one or several at a time.
    for (int i = 0; i < 10000; ++i) {
        Bytes bytes = valid;
        const int edits = 1 + static_cast<int>(pick(4));
        for (int e = 0; e < edits; ++e) {
            const size_t at = pick(bytes.size());
            if (rng() % 2) {
                bytes[at] ^= static_cast<uint8_t>(1u << pick(8));
            } else {
                static const char interesting[] = "{}[]\",:-0123456789e. \x00\xff";
                bytes[at] = rng() % 2 ? static_cast<uint8_t>(rng())
                                      : static_cast<uint8_t>(interesting[pick(sizeof interesting)]);
            }
        }
        run(bytes, "byte edits " + std::to_string(i));
    }
    // Structured JSON edits: replace one field of one tensor with a hostile value.
    const std::vector<std::string> hostile = {"-1",
                                              "0",
                                              "1",
                                              "2",
                                              "4294967296",
                                              "18446744073709551615",
                                              "18446744073709551616",
                                              "9223372036854775807",
                                              "1e300",
                                              "-0",
                                              "0.5",
                                              "null",
                                              "true",
                                              "\"F32\"",
                                              "\"U64\"",
                                              "\"BOOL\"",
                                              "\"\"",
                                              "[]",
                                              "[0]",
                                              "[1,2]",
                                              "[0,0]",
                                              "[0,41]",
                                              "[40,41]",
                                              "[2,1]",
                                              "[[1]]",
                                              "{}",
                                              "[-1,3]",
                                              "[3,3,3]",
                                              "[18446744073709551615,0]",
                                              "[0,18446744073709551615]",
                                              "[9223372036854775807,2]",
                                              "[2305843009213693952]",
                                              "[4611686018427387904,4]"};
    const std::vector<std::string> tensors = {"w", "h", "i", "b", "e", "s"};
    const std::vector<std::string> fields = {"dtype", "shape", "data_offsets"};
    const auto header_text = std::string(valid.begin() + 8, valid.begin() + 8 + header_len);
    const auto parsed = nlohmann::ordered_json::parse(header_text);
    const Bytes data(valid.end() - 41, valid.end());
    for (const auto& name : tensors) {
        for (const auto& field : fields) {
            for (const auto& value : hostile) {
                auto header = parsed;
                header[name][field] = nlohmann::ordered_json::parse(value);
                run(assemble(header.dump(), data), name + "." + field + "=" + value);
                // The same edit with the data section cut or grown, to meet the new offsets.
                for (const size_t size : {size_t{0}, size_t{40}, size_t{48}}) {
                    Bytes d(size, 1);
                    run(assemble(header.dump(), d),
                        name + "." + field + "=" + value + " data " + std::to_string(size));
                }
            }
        }
        // Overlapping / holey offsets: shift one tensor's window by a few bytes.
        for (int shift = -4; shift <= 4; ++shift) {
            auto header = parsed;
            auto offsets = header[name]["data_offsets"];
            const int64_t begin = offsets[0].get<int64_t>() + shift;
            const int64_t end = offsets[1].get<int64_t>() + shift;
            header[name]["data_offsets"] = {begin, end};
            run(assemble(header.dump(), data), name + " shifted " + std::to_string(shift));
        }
        // Extra or missing fields, and metadata of the wrong type.
        auto extra = parsed;
        extra[name]["extra"] = 1;
        run(assemble(extra.dump(), data), name + " extra field");
        auto missing = parsed;
        missing[name].erase("shape");
        run(assemble(missing.dump(), data), name + " missing shape");
        auto removed = parsed;
        removed.erase(name);
        run(assemble(removed.dump(), data), name + " removed");
    }
    for (const auto& meta : {"1", "[]", "{\"k\":1}", "{\"k\":null}", "\"x\"", "{}"}) {
        auto header = parsed;
        header["__metadata__"] = nlohmann::ordered_json::parse(meta);
        run(assemble(header.dump(), data), std::string("metadata ") + meta);
    }
    // Random splices of header text: delete or duplicate a span.
    for (int i = 0; i < 1000; ++i) {
        std::string header = header_text;
        const size_t at = pick(header.size());
        const size_t len = 1 + pick(std::min<size_t>(16, header.size() - at));
        if (rng() % 2) {
            header.erase(at, len);
        } else {
            header.insert(at, header.substr(at, len));
        }
        run(assemble(header, data), "splice " + std::to_string(i));
    }
    EXPECT_GT(cases, 10000);
    EXPECT_GT(accepted, 0);  // some mutations (e.g. of tensor data) are still valid files
}

}  // namespace
}  // namespace avatar
