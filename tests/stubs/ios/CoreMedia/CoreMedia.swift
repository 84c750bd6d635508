// Compile-only stub for tests: mirrors the public Swift signatures of Apple's CoreMedia used by the sample app,
// iOS 18 SDK (Xcode 16): https://developer.apple.com/documentation/coremedia/cmsamplebuffergetimagebuffer(_:),
// .../cmsamplebuffergetpresentationtimestamp(_:), .../cmtime/seconds. Bodies trap: nothing here runs.
@_exported import CoreVideo

public final class CMSampleBuffer {}
public func CMSampleBufferGetPresentationTimeStamp(_ sbuf: CMSampleBuffer) -> CMTime { fatalError("stub") }

public struct CMTime: Sendable {
    public var seconds: Double { fatalError("stub") }  // the Swift overlay's CMTimeGetSeconds
}
public func CMSampleBufferGetImageBuffer(_ sbuf: CMSampleBuffer) -> CVImageBuffer? { fatalError("stub") }
