// Compile-only stub for tests: mirrors the public Swift signatures of Apple's CoreMedia used by the sample app,
// iOS 18 SDK (Xcode 16). Bodies trap: nothing here runs.
@_exported import CoreVideo

public final class CMSampleBuffer {}
public func CMSampleBufferGetImageBuffer(_ sbuf: CMSampleBuffer) -> CVImageBuffer? { fatalError("stub") }
