// Compile-only stub for tests: mirrors the public Swift signatures of Apple's Vision used by generated code,
// iOS 18 SDK (Xcode 16). Bodies trap: nothing here runs (Vision exists on Apple platforms only).
@_exported import CoreGraphics
@_exported import CoreML

public typealias VNConfidence = Float
public typealias VNRequestCompletionHandler = (VNRequest, (any Error)?) -> Void

public struct VNImageOption: Hashable, RawRepresentable, Sendable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

public enum VNImageCropAndScaleOption: UInt, Sendable {
    case centerCrop = 0, scaleFit = 1, scaleFill = 2, scaleFitRotate90CCW = 0x101, scaleFillRotate90CCW = 0x102
}

open class VNObservation: NSObject {
    open var confidence: VNConfidence { fatalError("stub") }
}

open class VNDetectedObjectObservation: VNObservation {
    open var boundingBox: CGRect { fatalError("stub") }
}

open class VNClassificationObservation: VNObservation {
    open var identifier: String { fatalError("stub") }
}

open class VNRecognizedObjectObservation: VNDetectedObjectObservation {
    open var labels: [VNClassificationObservation] { fatalError("stub") }
}

open class VNRequest: NSObject {
    open var results: [VNObservation]? { fatalError("stub") }
}

open class VNImageBasedRequest: VNRequest {}

open class VNCoreMLModel: NSObject {
    public convenience init(for model: MLModel) throws { fatalError("stub") }
}

open class VNCoreMLRequest: VNImageBasedRequest {
    public init(model: VNCoreMLModel, completionHandler: VNRequestCompletionHandler? = nil) { fatalError("stub") }
    open var imageCropAndScaleOption: VNImageCropAndScaleOption = .centerCrop
}

open class VNImageRequestHandler: NSObject {
    public init(cvPixelBuffer pixelBuffer: CVPixelBuffer, options: [VNImageOption: Any] = [:]) { fatalError("stub") }
    public init(cgImage image: CGImage, options: [VNImageOption: Any] = [:]) { fatalError("stub") }
    open func perform(_ requests: [VNRequest]) throws { fatalError("stub") }
}
