#include "train/checkpoint.h"

#include <fstream>

#include "core/error.h"
#include "core/files.h"
#include "nn/state_dict.h"

namespace avatar::train {
namespace fs = std::filesystem;

bool checkpoint_exists(const fs::path& folder) {
    return fs::is_regular_file(folder / "state.json");
}

void save_checkpoint(const fs::path& folder, const CheckpointParts& parts, nlohmann::json state) {
    const fs::path partial = folder.string() + ".partial";
    const fs::path previous = folder.string() + ".previous";
    std::error_code ec;
    fs::remove_all(partial, ec);
    fs::create_directories(partial);
    for (const auto& [name, module] : parts.modules)
        nn::save_state(*module, partial / (name + ".safetensors"));
    for (const auto& [name, optimizer] : parts.optimizers) {
        torch::serialize::OutputArchive archive;
        optimizer->save(archive);
        archive.save_to((partial / (name + ".pt")).string());
    }
    state["format"] = kCheckpointFormat;
    const auto text = state.dump(2) + "\n";
    write_file_atomic(partial / "state.json", text.data(), text.size());
    // Swap: the old checkpoint stays on disk until the new one is in place.
    fs::remove_all(previous, ec);
    if (fs::exists(folder))
        fs::rename(folder, previous);
    fs::rename(partial, folder);
    fs::remove_all(previous, ec);
}

nlohmann::json load_checkpoint(const fs::path& folder, const CheckpointParts& parts) {
    const auto state_file = folder / "state.json";
    check(fs::is_regular_file(state_file), folder.string(), "no training checkpoint here");
    nlohmann::json state;
    try {
        std::ifstream in(state_file);
        state = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
        throw Error(state_file.string(), std::string("unreadable: ") + e.what());
    }
    check(state.value("format", "") == kCheckpointFormat, state_file.string(),
          std::string("not a ") + kCheckpointFormat + " checkpoint");
    for (const auto& [name, module] : parts.modules) {
        const auto file = SafetensorsFile::open(folder / (name + ".safetensors"));
        nn::load_state(*module, file, "", /*strict=*/true);
    }
    for (const auto& [name, optimizer] : parts.optimizers) {
        const auto path = folder / (name + ".pt");
        check(fs::is_regular_file(path), path.string(), "missing from the checkpoint");
        torch::serialize::InputArchive archive;
        archive.load_from(path.string());
        optimizer->load(archive);
    }
    return state;
}

}  // namespace avatar::train
