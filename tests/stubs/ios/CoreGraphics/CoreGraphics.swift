// Compile-only stub for tests: mirrors the public Swift signatures of Apple's CoreGraphics used by generated code,
// iOS 18 SDK (Xcode 16). CGImage and CGColorSpace are immutable CF types the SDK marks `@unchecked Sendable`
// (CG_SWIFT_SENDABLE; checked via the header-derived objc2-core-graphics thread_safety.rs, "Marked as
// @unchecked Swift.Sendable"), and so are they here. CGImagePropertyOrientation is ImageIO's (see ImageIO.swift).
// Bodies trap: nothing here runs.
@_exported import CFTypes

public final class CGImage: @unchecked Sendable {
    public var width: Int { fatalError("stub") }
    public var height: Int { fatalError("stub") }
}

public final class CGColorSpace: @unchecked Sendable {
    public static var sRGB: CFString { fatalError("stub") }
    public init?(name: CFString) { fatalError("stub") }
}

public enum CGImageAlphaInfo: UInt32 {
    case none = 0, premultipliedLast = 1, premultipliedFirst = 2, last = 3, first = 4, noneSkipLast = 5,
         noneSkipFirst = 6, alphaOnly = 7
}

public class CGContext {
    public init?(data: UnsafeMutableRawPointer?, width: Int, height: Int, bitsPerComponent: Int, bytesPerRow: Int,
                 space: CGColorSpace, bitmapInfo: UInt32) { fatalError("stub") }
    public func draw(_ image: CGImage, in rect: CGRect, byTiling: Bool = false) { fatalError("stub") }
}
