// Compile-only stub for tests: mirrors the public Swift signatures of Apple's Combine used by the sample app,
// iOS 18 SDK (Xcode 16). Bodies trap: nothing here runs.
public protocol ObservableObject: AnyObject {}

@propertyWrapper
public struct Published<Value> {
    public init(wrappedValue: Value) { storage = wrappedValue }
    private var storage: Value
    public var wrappedValue: Value {
        get { storage }
        set { storage = newValue }
    }
}
