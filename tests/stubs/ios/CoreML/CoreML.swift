// Compile-only stub for tests: mirrors the public Swift signatures of Apple's Core ML used by generated code,
// iOS 18 SDK (Xcode 16), with their availability. Checked against Apple's documentation:
//   https://developer.apple.com/documentation/coreml/mlmodel/load(contentsof:configuration:)  (async, iOS 15)
//   https://developer.apple.com/documentation/coreml/mlmodel/compilemodel(at:)-45ao6  (async, iOS 16)
//   https://developer.apple.com/documentation/coreml/mlmodel/prediction(from:options:)-3vg03  (async, iOS 17)
// `MLModel` is an `NSObject` subclass without a Sendable annotation in the SDK's headers, so it is not Sendable
// here either (NSObject is not Sendable). Bodies trap: nothing here runs (Core ML exists on Apple platforms only).
@_exported import CoreVideo

public enum MLComputeUnits: Int, Sendable {
    case cpuOnly = 0, cpuAndGPU = 1, all = 2, cpuAndNeuralEngine = 3
}

open class MLModelConfiguration: NSObject {
    open var computeUnits: MLComputeUnits = .all
    public override init() { super.init() }
}

public protocol MLFeatureProvider {
    var featureNames: Set<String> { get }
    func featureValue(for featureName: String) -> MLFeatureValue?
}

open class MLDictionaryFeatureProvider: NSObject, MLFeatureProvider {
    public init(dictionary: [String: Any]) throws { fatalError("stub") }
    open var featureNames: Set<String> { fatalError("stub") }
    open func featureValue(for featureName: String) -> MLFeatureValue? { fatalError("stub") }
}

public enum MLMultiArrayDataType: Int, Sendable {
    case double = 65600, float32 = 65568, float16 = 65552, int32 = 131104
    public static var float64: MLMultiArrayDataType { .double }
    public static var float: MLMultiArrayDataType { .float32 }
}

public protocol MLShapedArrayScalar {}
extension Float: MLShapedArrayScalar {}
extension Double: MLShapedArrayScalar {}
extension Int32: MLShapedArrayScalar {}

open class MLMultiArray: NSObject {
    public init(shape: [NSNumber], dataType: MLMultiArrayDataType) throws { fatalError("stub") }
    open var shape: [NSNumber] { fatalError("stub") }
    open var strides: [NSNumber] { fatalError("stub") }
    open var dataType: MLMultiArrayDataType { fatalError("stub") }
    open var count: Int { fatalError("stub") }
    public func withUnsafeBufferPointer<S, R>(ofType type: S.Type, _ body: (UnsafeBufferPointer<S>) throws -> R) rethrows
        -> R where S: MLShapedArrayScalar { fatalError("stub") }
    public func withUnsafeMutableBufferPointer<S, R>(ofType type: S.Type,
                                                     _ body: (UnsafeMutableBufferPointer<S>, [Int]) throws -> R)
        rethrows -> R where S: MLShapedArrayScalar { fatalError("stub") }
}

open class MLFeatureValue: NSObject {
    public init(multiArray value: MLMultiArray) { fatalError("stub") }
    public init(pixelBuffer value: CVPixelBuffer) { fatalError("stub") }
    open var multiArrayValue: MLMultiArray? { fatalError("stub") }
}

open class MLPredictionOptions: NSObject {
    public override init() { super.init() }
}

open class MLModel: NSObject {
    public init(contentsOf url: URL, configuration: MLModelConfiguration) throws { fatalError("stub") }
    @available(iOS 15.0, macOS 12.0, *)
    open class func load(contentsOf url: URL, configuration: MLModelConfiguration = MLModelConfiguration()) async throws
        -> MLModel { fatalError("stub") }
    open func prediction(from input: any MLFeatureProvider) throws -> any MLFeatureProvider { fatalError("stub") }
    open func prediction(from input: any MLFeatureProvider, options: MLPredictionOptions) throws
        -> any MLFeatureProvider { fatalError("stub") }
    @available(iOS 17.0, macOS 14.0, *)
    open func prediction(from input: any MLFeatureProvider, options: MLPredictionOptions = MLPredictionOptions())
        async throws -> any MLFeatureProvider { fatalError("stub") }
    /// Compiles into a temporary folder; the caller moves the `.mlmodelc` to keep it. Documented as
    /// "iOS 11.0-27.0": deprecated in favour of the asynchronous form.
    @available(iOS, introduced: 11.0, deprecated: 100000,
               message: "Use the asynchronous interface compileModelAtURL:completionHandler:error: instead.")
    @available(macOS, introduced: 10.13, deprecated: 100000,
               message: "Use the asynchronous interface compileModelAtURL:completionHandler:error: instead.")
    open class func compileModel(at modelURL: URL) throws -> URL { fatalError("stub") }
    @available(iOS 16.0, macOS 13.0, *)
    open class func compileModel(at url: URL) async throws -> URL { fatalError("stub") }
}
