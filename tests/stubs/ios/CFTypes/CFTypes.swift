// Compile-only stub for tests: the CoreFoundation / MacTypes names that Apple's CoreGraphics and CoreVideo
// re-export, as the iOS 18 SDK (Xcode 16) declares them. Linux's Foundation provides CGFloat, CGPoint, CGSize and
// CGRect with Apple's signatures, so they are not repeated here.
@_exported import Foundation

public typealias OSType = UInt32
public typealias FourCharCode = UInt32

public typealias CFString = NSString  // toll-free bridged on Apple platforms; `as String` works alike
public final class CFAllocator {}
public final class CFDictionary {}
