// swift-tools-version:5.9
// Apple's frameworks as compile-only stub modules (tests/stubs/ios), built once per test session (conftest.py's
// `apple_stub_modules`); the shipped Swift packages, and the sample apps against them, are then built with
// `-Xswiftc -I <these modules>`, their own Package.swift untouched.
import PackageDescription

let package = Package(
    name: "AppleStubs",
    targets: [
        .target(name: "CFTypes", path: "Stubs/CFTypes"),
        .target(name: "CoreGraphics", dependencies: ["CFTypes"], path: "Stubs/CoreGraphics"),
        .target(name: "CoreVideo", dependencies: ["CFTypes"], path: "Stubs/CoreVideo"),
        .target(name: "CoreML", dependencies: ["CoreVideo"], path: "Stubs/CoreML"),
        .target(name: "ImageIO", dependencies: ["CoreGraphics"], path: "Stubs/ImageIO"),
        .target(name: "Vision", dependencies: ["CoreGraphics", "CoreML", "ImageIO"], path: "Stubs/Vision"),
        .target(name: "Combine", path: "Stubs/Combine"),
        .target(name: "CoreMedia", dependencies: ["CoreVideo"], path: "Stubs/CoreMedia"),
        .target(name: "UIKit", dependencies: ["CoreGraphics"], path: "Stubs/UIKit"),
        .target(name: "AVFoundation", dependencies: ["CoreMedia", "UIKit"], path: "Stubs/AVFoundation"),
        .target(name: "SwiftUI", dependencies: ["Combine", "UIKit"], path: "Stubs/SwiftUI"),
    ]
)
