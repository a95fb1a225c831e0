#pragma once
// The one place that wires every layer's models and reference-check cases into the registries
// (core/model_registry.h, core/reference_check.h). Explicit calls rather than static
// self-registration: objects in a static library that nothing references are dropped by the
// linker, and the order of registration stays visible here.

namespace avatar {

// Registers all built-in models and reference cases; safe to call more than once.
void register_builtin_modules();

}  // namespace avatar
