"""The Swift package, generated from the contract (``templates/ios/package``).

``<Name>Core`` is pure Swift over Foundation (contract constants, pre- and post-processing, the compiled-model
cache), so the tests compile and run it on Linux against the Python reference; ``<Name>Kit`` wraps it in Core ML (and
Vision when the bundle has the Vision-ready pipeline) and carries the ``.mlpackage`` resources.

The resources are declared ``.copy``: an ``.mlpackage`` is a folder whose structure must stay intact (SwiftPM's copy
rule keeps a directory's structure; ``.process`` flattens its files, so ``swift build`` fails on the duplicate
``Manifest.json`` / ``model.mlmodel`` / ``weight.bin`` of two packages, and in Xcode it compiles the model and
generates a public class named after it, which can collide with the SDK's own class). The Kit compiles a package on
the device with the asynchronous ``MLModel.compileModel(at:)`` the first time a model version runs and keeps the
``.mlmodelc`` in Application Support, keyed by the package's name and its SHA-256 (the contract's ``sha256``, the
bundle manifest's digest, written into the Spec: the device never hashes the package; ``ModelCache`` in the core);
later loads (``MLModel.load(contentsOf:configuration:)``) use it; a compiled ``<stem>.mlmodelc`` in the resources is
used as is. Image inputs are fed from IOSurface-backed ``CVPixelBufferPool`` buffers reused from frame to frame
(``BufferPool`` in the core), and the Spec carries the model's identity (``modelInfo``).

The package builds in Swift 6 language mode (``swift-tools-version: 6.0``, ``swiftLanguageModes: [.v6]``): the
detector / classifier is an ``actor`` holding the non-Sendable ``MLModel`` (one prediction at a time, through the
core's cancellable ``TurnGate``); the core adds the frame orientation (EXIF, as ``mobilekit.data.orientation``), the
category masks and the live mode's latest-frame queue.
"""

from __future__ import annotations

from typing import Any

from mobilekit.codegen.render import api_class, render_tree, type_name
from mobilekit.contract import Contract, Identity
from mobilekit.kinds import Kind, shipped_coreml

#: Swift's reserved words (declarations, statements, expressions and types) that cannot name a type or module.
SWIFT_KEYWORDS = {
    "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init", "inout",
    "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public", "rethrows", "static",
    "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue", "default", "defer", "do", "else",
    "fallthrough", "for", "guard", "if", "in", "repeat", "return", "throw", "switch", "where", "while", "any", "as",
    "await", "false", "is", "nil", "self", "super", "throws", "true", "try", "type", "foundation",
    "coreml", "vision", "corevideo", "coregraphics", "swift", "xctest",
}

#: iOS deployment target → the macOS release of the same Core ML generation.
PLATFORMS = {"iOS16": ("16.0", "13.0"), "iOS17": ("17.0", "14.0"), "iOS18": ("18.0", "15.0")}


def swift_name(contract: Contract) -> str:
    """The type-name prefix (and the core module's, ``<Name>Core``): a Swift identifier that is neither a keyword
    nor a system module's name."""
    return type_name(contract.name, SWIFT_KEYWORDS)


def kit_name(contract: Contract) -> str:
    """The package, its library and API module: ``<Name>Kit``, so no type shares the module's name (Swift then
    cannot qualify it) while the entry type stays ``<Name>Detector`` / ``<Name>Classifier``."""
    return swift_name(contract) + "Kit"


def primary_kind(contract: Contract) -> str:
    """The Core ML model the package runs: the first compressed variant (palettized weights for the Neural
    Engine), by name, else the fp16 package."""
    if kind := shipped_coreml(contract.artifacts):
        return kind
    raise ValueError("the Swift package needs a Core ML model in the contract (enable coreml in the config)")


def resources(contract: Contract) -> dict[str, str]:
    """Artifact kind → file name of each ``.mlpackage`` the package ships (the primary model, then Vision's)."""
    kinds = [primary_kind(contract)] + ([Kind.COREML_VISION] if Kind.COREML_VISION in contract.artifacts else [])
    return {k: contract.artifacts[k].path.split("/")[-1] for k in kinds}


def written(contract: Contract) -> tuple[list[str], Identity]:
    """The SHA-256 of each shipped ``.mlpackage`` (as ``resources`` lists them) and the model's identity: what the
    bundle writer fills in, and what the package's cache key and ``modelInfo`` are made of (nothing is hashed on the
    device), so a contract that has not been through a bundle cannot make a package."""
    digests = [contract.artifacts[kind].sha256 for kind in resources(contract)]
    if not all(digests) or contract.identity is None:
        raise ValueError("the Swift package needs the contract of a written bundle (artifact digests and the model's "
                         "identity are filled in when the bundle is written)")
    return digests, contract.identity


def template_context(contract: Contract, deployment_target: str) -> dict[str, Any]:
    base = swift_name(contract)
    ios, macos = PLATFORMS[deployment_target]
    files = list(resources(contract).values())
    sha256s, identity = written(contract)
    return {"type_name": base, "kit": kit_name(contract), "cls": api_class(base, contract.task),
            "coreml_kind": primary_kind(contract), "vision": contract.artifacts.get(Kind.COREML_VISION),
            "resources": files, "stems": [f.removesuffix(".mlpackage") for f in files], "sha256s": sha256s,
            "identity": identity, "platforms": {"ios": ios, "macos": macos}}


def render_package(contract: Contract, deployment_target: str) -> dict[str, str]:
    """Relative path → text of every generated file (the ``.mlpackage`` and labels resources are copied by the
    caller into ``Sources/<Name>Kit/Resources/``); deterministic: sorted, no timestamps."""
    return render_tree("ios/package", contract, template_context(contract, deployment_target))


def resource_dir(contract: Contract) -> str:
    return f"Sources/{kit_name(contract)}/Resources"
