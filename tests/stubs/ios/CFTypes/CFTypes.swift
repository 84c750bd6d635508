// Compile-only stub for tests: the CoreFoundation / MacTypes names that Apple's CoreGraphics and CoreVideo
// re-export, as the iOS 18 SDK (Xcode 16) declares them. Linux's Foundation provides CGFloat, CGPoint, CGSize and
// CGRect with Apple's signatures, so they are not repeated here.
@_exported import Foundation

public typealias OSType = UInt32
public typealias FourCharCode = UInt32

public typealias CFString = NSString  // toll-free bridged on Apple platforms; `as String` works alike
public final class CFAllocator {}
// toll-free bridged with NSDictionary on Apple platforms: `[String: Any] as CFDictionary` compiles alike
public typealias CFDictionary = NSDictionary

// Foundation's Swift key-value observing overlay, which Apple's Foundation has and Linux's does not
// (https://developer.apple.com/documentation/objectivec/nsobject-swift.class/observe(_:options:changehandler:),
// iOS 18 SDK: `@preconcurrency` with a `@Sendable` change handler).
public struct NSKeyValueObservingOptions: OptionSet, Sendable {
    public let rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }
    public static let new = NSKeyValueObservingOptions(rawValue: 1)
    public static let old = NSKeyValueObservingOptions(rawValue: 2)
    public static let initial = NSKeyValueObservingOptions(rawValue: 4)
    public static let prior = NSKeyValueObservingOptions(rawValue: 8)
}

public struct NSKeyValueObservedChange<Value> {
    public let newValue: Value?
    public let oldValue: Value?
    public let isPrior: Bool
}

public class NSKeyValueObservation: NSObject {
    public func invalidate() { fatalError("stub") }
}

public protocol _KeyValueCodingAndObserving {}

extension NSObject: _KeyValueCodingAndObserving {}

extension _KeyValueCodingAndObserving {
    @preconcurrency
    public func observe<Value>(_ keyPath: KeyPath<Self, Value>, options: NSKeyValueObservingOptions = [],
                               changeHandler: @escaping @Sendable (Self, NSKeyValueObservedChange<Value>) -> Void)
        -> NSKeyValueObservation { fatalError("stub") }
}
