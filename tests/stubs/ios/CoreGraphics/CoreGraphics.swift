// Compile-only stub for tests: mirrors the public Swift signatures of Apple's CoreGraphics used by generated code,
// iOS 18 SDK (Xcode 16). Bodies trap: nothing here runs.
@_exported import CFTypes

public class CGImage {
    public var width: Int { fatalError("stub") }
    public var height: Int { fatalError("stub") }
}

public class CGColorSpace {
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

public enum CGImagePropertyOrientation: UInt32 {
    case up = 1, upMirrored, down, downMirrored, leftMirrored, right, rightMirrored, left
}
