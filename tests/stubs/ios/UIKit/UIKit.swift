// Compile-only stub for tests: mirrors the public Swift signatures of Apple's UIKit (and the QuartzCore CALayer it
// re-exports) used by the sample app, iOS 18 SDK (Xcode 16). UIView is `@MainActor` there
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

open class UIImage {
    public init?(contentsOfFile path: String) { fatalError("stub") }
    open var cgImage: CGImage? { fatalError("stub") }
}
