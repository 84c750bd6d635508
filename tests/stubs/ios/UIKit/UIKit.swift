// Compile-only stub for tests: mirrors the public Swift signatures of Apple's UIKit (and the QuartzCore CALayer it
// re-exports) used by the sample app, iOS 18 SDK (Xcode 16). UIView, UIDevice and UIApplication are `@MainActor`
// there (https://developer.apple.com/documentation/uikit/uiview); CALayer and UIImage are not. Bodies trap: nothing
// here runs.
@_exported import CoreGraphics

open class CALayer {
    public init() {}
}

@MainActor
open class UIView {
    public init() {}
    open class var layerClass: AnyClass { CALayer.self }
    open var layer: CALayer { fatalError("stub") }
}

public enum UIDeviceOrientation: Int, @unchecked Sendable {
    case unknown = 0, portrait, portraitUpsideDown, landscapeLeft, landscapeRight, faceUp, faceDown
}

/// `@MainActor` in the SDK (https://developer.apple.com/documentation/uikit/uidevice); its notification names are
/// not isolated (`class let` in the SDK, `static let` here).
@MainActor
open class UIDevice {
    open class var current: UIDevice { fatalError("stub") }
    open var orientation: UIDeviceOrientation { fatalError("stub") }
    open var isGeneratingDeviceOrientationNotifications: Bool { fatalError("stub") }
    open func beginGeneratingDeviceOrientationNotifications() { fatalError("stub") }
    open func endGeneratingDeviceOrientationNotifications() { fatalError("stub") }
    nonisolated public static let orientationDidChangeNotification =
        NSNotification.Name("UIDeviceOrientationDidChangeNotification")
}

open class UIImage {
    public init?(contentsOfFile path: String) { fatalError("stub") }
    open var cgImage: CGImage? { fatalError("stub") }
}

/// `@MainActor` in the SDK (https://developer.apple.com/documentation/uikit/uiapplication). `openSettingsURLString`
/// is a `class let` there, imported from a global constant (not isolated): `static let` here, its value the SDK's.
@MainActor
open class UIApplication {
    public struct OpenExternalURLOptionsKey: Hashable, RawRepresentable, Sendable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
    }
    open class var shared: UIApplication { fatalError("stub") }
    nonisolated public static let openSettingsURLString = "app-settings:"
    open func open(_ url: URL, options: [UIApplication.OpenExternalURLOptionsKey: Any] = [:],
                   completionHandler completion: (@MainActor @Sendable (Bool) -> Void)? = nil) { fatalError("stub") }
}
