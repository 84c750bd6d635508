// Compile-only stub for tests: mirrors the public Swift signatures of Apple's CoreVideo used by generated code,
// iOS 18 SDK (Xcode 16). Bodies trap: nothing here runs.
@_exported import CFTypes

public class CVBuffer {}
public typealias CVImageBuffer = CVBuffer
public typealias CVPixelBuffer = CVImageBuffer
public class CVPixelBufferPool {}
public typealias CVReturn = Int32
public typealias CVOptionFlags = UInt64

public var kCVReturnSuccess: CVReturn { 0 }
public var kCVPixelFormatType_32ARGB: OSType { 0x0000_0020 }
public var kCVPixelFormatType_32BGRA: OSType { 0x4247_5241 }  // 'BGRA'
public var kCVPixelFormatType_32RGBA: OSType { 0x5247_4241 }  // 'RGBA'

public struct CVPixelBufferLockFlags: OptionSet, Sendable {
    public let rawValue: CVOptionFlags
    public init(rawValue: CVOptionFlags) { self.rawValue = rawValue }
    public static let readOnly = CVPixelBufferLockFlags(rawValue: 1)
}

public func CVPixelBufferCreate(_ allocator: CFAllocator?, _ width: Int, _ height: Int, _ pixelFormatType: OSType,
                                _ pixelBufferAttributes: CFDictionary?,
                                _ pixelBufferOut: UnsafeMutablePointer<CVPixelBuffer?>) -> CVReturn { fatalError("stub") }
public func CVPixelBufferLockBaseAddress(_ pixelBuffer: CVPixelBuffer, _ lockFlags: CVPixelBufferLockFlags) -> CVReturn {
    fatalError("stub")
}
@discardableResult
public func CVPixelBufferUnlockBaseAddress(_ pixelBuffer: CVPixelBuffer,
                                           _ unlockFlags: CVPixelBufferLockFlags) -> CVReturn { fatalError("stub") }
public func CVPixelBufferGetBaseAddress(_ pixelBuffer: CVPixelBuffer) -> UnsafeMutableRawPointer? { fatalError("stub") }
public func CVPixelBufferGetBytesPerRow(_ pixelBuffer: CVPixelBuffer) -> Int { fatalError("stub") }
public func CVPixelBufferGetWidth(_ pixelBuffer: CVPixelBuffer) -> Int { fatalError("stub") }
public func CVPixelBufferGetHeight(_ pixelBuffer: CVPixelBuffer) -> Int { fatalError("stub") }
public func CVPixelBufferGetPixelFormatType(_ pixelBuffer: CVPixelBuffer) -> OSType { fatalError("stub") }
public var kCVPixelBufferPixelFormatTypeKey: CFString { "PixelFormatType" as NSString }

// CVPixelBufferPool.h and CVPixelBuffer.h's attribute keys (imported as `let` constants of type CFString).
public func CVPixelBufferPoolCreate(_ allocator: CFAllocator?, _ poolAttributes: CFDictionary?,
                                    _ pixelBufferAttributes: CFDictionary?,
                                    _ poolOut: UnsafeMutablePointer<CVPixelBufferPool?>) -> CVReturn { fatalError("stub") }
public func CVPixelBufferPoolCreatePixelBuffer(_ allocator: CFAllocator?, _ pixelBufferPool: CVPixelBufferPool,
                                               _ pixelBufferOut: UnsafeMutablePointer<CVPixelBuffer?>) -> CVReturn {
    fatalError("stub")
}
public var kCVPixelBufferWidthKey: CFString { "Width" as NSString }
public var kCVPixelBufferHeightKey: CFString { "Height" as NSString }
public var kCVPixelBufferIOSurfacePropertiesKey: CFString { "IOSurfaceProperties" as NSString }
public var kCVPixelBufferMetalCompatibilityKey: CFString { "MetalCompatibility" as NSString }
public var kCVPixelBufferCGImageCompatibilityKey: CFString { "CGImageCompatibility" as NSString }
public var kCVPixelBufferCGBitmapContextCompatibilityKey: CFString { "CGBitmapContextCompatibility" as NSString }
public var kCVPixelBufferPoolMinimumBufferCountKey: CFString { "MinimumBufferCount" as NSString }
