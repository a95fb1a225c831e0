#include "core/files.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace avatar {
namespace fs = std::filesystem;

namespace {
std::atomic<unsigned> g_temp_counter{0};
}

AtomicOutput::AtomicOutput(fs::path final_path) : final_path_(std::move(final_path)) {
    check(!final_path_.empty(), "output", "empty output path");
    const fs::path parent = final_path_.parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        fs::create_directories(parent, ec);
        check(!ec, parent.string(), "cannot create output directory: " + ec.message());
    }
    check(!fs::is_directory(final_path_), final_path_.string(), "is a directory, expected a file");
    const std::string name = "." + final_path_.stem().string() + ".tmp-" +
                             std::to_string(::getpid()) + "-" + std::to_string(g_temp_counter++) +
                             final_path_.extension().string();
    temp_path_ = parent / name;
}

AtomicOutput::~AtomicOutput() {
    if (!committed_) {
        std::error_code ec;
        fs::remove(temp_path_, ec);
    }
}

void AtomicOutput::commit() {
    check(!committed_, final_path_.string(), "output committed twice");
    std::error_code ec;
    check(fs::exists(temp_path_, ec), final_path_.string(), "nothing was written");
    fs::rename(temp_path_, final_path_, ec);
    check(!ec, final_path_.string(), "cannot move the finished file into place: " + ec.message());
    committed_ = true;
}

void require_regular_file(const fs::path& path) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    check(fs::exists(status), path.string(), "no such file");
    check(fs::is_regular_file(status), path.string(), "not a regular file");
}

std::vector<uint8_t> read_file(const fs::path& path) {
    require_regular_file(path);
    std::ifstream in(path, std::ios::binary);
    check(in.good(), path.string(), std::string("cannot open: ") + std::strerror(errno));
    in.seekg(0, std::ios::end);
    const auto size = static_cast<size_t>(in.tellg());
    in.seekg(0, std::ios::beg);
    std::vector<uint8_t> bytes(size);
    if (size > 0)
        in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
    check(in.good(), path.string(), "read error");
    return bytes;
}

std::string read_text_file(const fs::path& path) {
    const auto bytes = read_file(path);
    return std::string(bytes.begin(), bytes.end());
}

void write_file_atomic(const fs::path& path, const void* data, size_t size) {
    AtomicOutput output(path);
    {
        std::ofstream out(output.temp_path(), std::ios::binary | std::ios::trunc);
        check(out.good(), path.string(), std::string("cannot create: ") + std::strerror(errno));
        out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
        out.flush();
        check(out.good(), path.string(), "write error (disk full?)");
    }
    output.commit();
}

}  // namespace avatar
