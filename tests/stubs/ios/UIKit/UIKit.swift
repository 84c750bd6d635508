// Compile-only stub for tests: mirrors the public Swift signatures of Apple's UIKit (and the QuartzCore CALayer it
// re-exports) used by the sample app, iOS 18 SDK (Xcode 16). UIView and UIDevice are `@MainActor` there
// (https://developer.apple.com/documentation/uikit/uiview); CALayer and UIImage are not. Bodies trap: nothing here
// runs.
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
