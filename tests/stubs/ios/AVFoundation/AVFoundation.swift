// Compile-only stub for tests: mirrors the public Swift signatures of Apple's AVFoundation capture API used by the
// sample app, iOS 18 SDK (Xcode 16): capture devices and their authorization (AVCaptureDevice.authorizationStatus(for:)
// and requestAccess(for:), whose completion handler is `@Sendable` there and which Swift also imports as `async`),
// sessions, outputs and preview layers. AVCaptureDevice.RotationCoordinator and the rotation-angle API of
// AVCaptureConnection as documented at developer.apple.com/documentation/avfoundation/avcapturedevice/
// rotationcoordinator (iOS 17.0+; its `device` and `previewLayer` are `weak var { get }` there, which a computed stub
// property cannot spell). Linux ignores `@available(iOS ...)`, so availability is written out for the reader.
// Bodies trap: nothing here runs.
@_exported import CoreMedia
@_exported import UIKit
import Dispatch

public struct AVMediaType: Hashable, RawRepresentable, Sendable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let video = AVMediaType(rawValue: "vide")
}

public struct AVLayerVideoGravity: Hashable, RawRepresentable, Sendable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let resizeAspect = AVLayerVideoGravity(rawValue: "AVLayerVideoGravityResizeAspect")
    public static let resizeAspectFill = AVLayerVideoGravity(rawValue: "AVLayerVideoGravityResizeAspectFill")
}

public enum AVAuthorizationStatus: Int, @unchecked Sendable {
    case notDetermined = 0, restricted = 1, denied = 2, authorized = 3
}

public enum AVCaptureVideoOrientation: Int, Sendable {
    case portrait = 1, portraitUpsideDown, landscapeRight, landscapeLeft
}

open class AVCaptureDevice: NSObject {
    public enum Position: Int, @unchecked Sendable {
        case unspecified = 0, back = 1, front = 2
    }
    open class func `default`(for mediaType: AVMediaType?) -> AVCaptureDevice? { fatalError("stub") }
    open class func authorizationStatus(for mediaType: AVMediaType) -> AVAuthorizationStatus { fatalError("stub") }
    open class func requestAccess(for mediaType: AVMediaType,
                                  completionHandler handler: @escaping @Sendable (Bool) -> Void) { fatalError("stub") }
    open class func requestAccess(for mediaType: AVMediaType) async -> Bool { fatalError("stub") }
    open var position: AVCaptureDevice.Position { fatalError("stub") }
}

extension AVCaptureDevice {
    /// Key-value observable; the coordinator delivers its changes on the main queue.
    @available(iOS 17.0, macOS 14.0, tvOS 17.0, macCatalyst 17.0, *)
    open class RotationCoordinator: NSObject {
        public init(device: AVCaptureDevice, previewLayer: CALayer?) { fatalError("stub") }
        open var device: AVCaptureDevice? { fatalError("stub") }
        open var previewLayer: CALayer? { fatalError("stub") }
        open var videoRotationAngleForHorizonLevelPreview: CGFloat { fatalError("stub") }
        open var videoRotationAngleForHorizonLevelCapture: CGFloat { fatalError("stub") }
    }
}

open class AVCaptureInput: NSObject {}

open class AVCaptureDeviceInput: AVCaptureInput {
    public init(device: AVCaptureDevice) throws { fatalError("stub") }
}

open class AVCaptureConnection: NSObject {
    @available(iOS 17.0, *)
    open func isVideoRotationAngleSupported(_ videoRotationAngle: CGFloat) -> Bool { fatalError("stub") }
    @available(iOS 17.0, *)
    open var videoRotationAngle: CGFloat {
        get { fatalError("stub") }
        set { fatalError("stub") }
    }
    @available(iOS, introduced: 6.0, deprecated: 17.0, message: "Use videoRotationAngle instead")
    open var videoOrientation: AVCaptureVideoOrientation {
        get { fatalError("stub") }
        set { fatalError("stub") }
    }
}

open class AVCaptureOutput: NSObject {
    open func connection(with mediaType: AVMediaType) -> AVCaptureConnection? { fatalError("stub") }
}

public protocol AVCaptureVideoDataOutputSampleBufferDelegate: NSObjectProtocol {
    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer,
                       from connection: AVCaptureConnection)
}

public extension AVCaptureVideoDataOutputSampleBufferDelegate {  // an optional requirement in the SDK
    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer,
                       from connection: AVCaptureConnection) {}
}

open class AVCaptureVideoDataOutput: AVCaptureOutput {
    public override init() { super.init() }
    open var videoSettings: [String: Any]! {
        get { fatalError("stub") }
        set { fatalError("stub") }
    }
    open var alwaysDiscardsLateVideoFrames: Bool {
        get { fatalError("stub") }
        set { fatalError("stub") }
    }
    open func setSampleBufferDelegate(_ sampleBufferDelegate: (any AVCaptureVideoDataOutputSampleBufferDelegate)?,
                                      queue sampleBufferCallbackQueue: DispatchQueue?) { fatalError("stub") }
}

open class AVCaptureSession: NSObject {
    public struct Preset: Hashable, RawRepresentable, Sendable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public static let hd1280x720 = Preset(rawValue: "AVCaptureSessionPreset1280x720")
        public static let high = Preset(rawValue: "AVCaptureSessionPresetHigh")
    }
    public override init() { super.init() }
    open var sessionPreset: Preset {
        get { fatalError("stub") }
        set { fatalError("stub") }
    }
    open func beginConfiguration() { fatalError("stub") }
    open func commitConfiguration() { fatalError("stub") }
    open func canAddInput(_ input: AVCaptureInput) -> Bool { fatalError("stub") }
    open func addInput(_ input: AVCaptureInput) { fatalError("stub") }
    open func canAddOutput(_ output: AVCaptureOutput) -> Bool { fatalError("stub") }
    open func addOutput(_ output: AVCaptureOutput) { fatalError("stub") }
    open func startRunning() { fatalError("stub") }
    open func stopRunning() { fatalError("stub") }
}

open class AVCaptureVideoPreviewLayer: CALayer {
    public override init() { super.init() }
    open var session: AVCaptureSession? {
        get { fatalError("stub") }
        set { fatalError("stub") }
    }
    open var videoGravity: AVLayerVideoGravity {
        get { fatalError("stub") }
        set { fatalError("stub") }
    }
    open var connection: AVCaptureConnection? { fatalError("stub") }
}
