import AVFoundation
import CoreGraphics
import CoreML
import Foundation
import ImageIO
import ShapesDetectorKit
import SwiftUI
import UIKit

/// Whether the app may use the camera, as the view shows it.
enum CameraAccess: Equatable {
    /// Not asked yet, or the system's prompt is up.
    case unknown
    case granted
    /// The user said no (here or in Settings): the view says so and offers Settings.
    case denied
    /// A device policy (Screen Time, MDM) forbids it: the user cannot change it here.
    case restricted
}

/// What the view draws: results, the size of the (upright) image they refer to, compute units and inference time.
/// Loads ShapesDetector asynchronously, asks for the camera before the first session starts (the system's prompt, with
/// the purpose string of Package.swift), feeds the model camera frames through its live mode (latest frame wins)
/// with the orientation of the moment, or runs it on the bundled still image. Main-actor state; the camera lives on
/// its own queue (`CaptureController`).
@MainActor
final class Camera: ObservableObject {
    @Published var results: [Detection] = []
    @Published var imageSize = CGSize(width: 1, height: 1)
    @Published var status = "loading the model…"
    @Published var still: CGImage?
    @Published var access = CameraAccess.unknown

    let capture = CaptureController()
    private var model: ShapesDetector?
    private var listener: Task<Void, Never>?
    private var cameraWanted = false
    private var askingForAccess = false
    private let computeUnits: MLComputeUnits = .cpuAndNeuralEngine
    private weak var previewLayer: AVCaptureVideoPreviewLayer?
    /// `AVCaptureDevice.RotationCoordinator` on iOS 17+ (a stored property cannot have a newer type).
    private var rotationCoordinator: NSObject?
    private var rotationObservation: NSKeyValueObservation?
    private var deviceOrientationObserver: (any NSObjectProtocol)?

    /// A clockwise rotation (AVCaptureConnection's `videoRotationAngle` convention), then a mirror (front camera),
    /// as an EXIF orientation: what the SDK needs to turn a frame of the sensor's layout upright.
    static func orientation(rotationAngle: CGFloat, mirrored: Bool) -> CGImagePropertyOrientation {
        switch (Int(rotationAngle.rounded()) % 360 + 360) % 360 {
        case 90: return mirrored ? .leftMirrored : .right
        case 180: return mirrored ? .downMirrored : .down
        case 270: return mirrored ? .rightMirrored : .left
        default: return mirrored ? .upMirrored : .up
        }
    }

    /// Before iOS 17: the clockwise turn that makes a frame upright for a device orientation (the back camera's
    /// sensor is upright in `landscapeLeft`, the front camera's in `landscapeRight`); nil when the device lies flat.
    static func rotationAngle(_ device: UIDeviceOrientation, front: Bool) -> CGFloat? {
        switch device {
        case .portrait: return 90
        case .portraitUpsideDown: return 270
        case .landscapeLeft: return front ? 180 : 0
        case .landscapeRight: return front ? 0 : 180
        default: return nil
        }
    }

    init() {
        Task { await load() }
    }

    private func load() async {
        let configuration = ShapesDetector.defaultConfiguration()
        configuration.computeUnits = computeUnits
        do {
            model = try await ShapesDetector.load(configuration: configuration)  // compiles once, off the main actor
            status = "ready"
            if cameraWanted { startCamera() }
        } catch {
            status = "cannot load the model: \(error)"
        }
    }

    /// Starts the camera once access is granted and the model is loaded (whichever comes last calls this again).
    func startCamera() {
        still = nil
        cameraWanted = true
        guard hasCameraAccess() else { return }
        guard let model else { return }  // starts once the model is loaded
        stopCamera()
        cameraWanted = true
        let live = model.live()
        listener = Task { [weak self] in
            for await result in live.results {
                self?.show(result)
            }
        }
        capture.start(live, started: { [weak self] in
            Task { @MainActor in self?.followRotation() }
        }, failed: { [weak self] message in
            Task { @MainActor in self?.status = message }
        })
    }

    /// Camera access, asked for the first time it is needed: `AVCaptureDevice.requestAccess(for:)` shows the
    /// system's prompt once; its answer calls `startCamera()` again. A session started without access would only
    /// deliver black frames, so nothing starts until the answer is yes, and a no is shown (`access`).
    private func hasCameraAccess() -> Bool {
        switch AVCaptureDevice.authorizationStatus(for: .video) {
        case .authorized:
            access = .granted
            return true
        case .notDetermined:
            guard !askingForAccess else { return false }
            askingForAccess = true
            Task {
                let granted = await AVCaptureDevice.requestAccess(for: .video)
                askingForAccess = false
                access = granted ? .granted : .denied
                if cameraWanted { startCamera() }
            }
            return false
        case .restricted:
            access = .restricted
            status = "the camera is restricted on this device: use the still image"
            return false
        default:  // .denied
            access = .denied
            status = "no camera access: allow it in Settings, or use the still image"
            return false
        }
    }

    /// This app's page in Settings, where the user can turn camera access on (iOS restarts the app when it changes).
    func openSettings() {
        if let url = URL(string: UIApplication.openSettingsURLString) {
            UIApplication.shared.open(url)
        }
    }

    /// Stops the frames (the one waiting is dropped, the one running finishes), the capture session and the
    /// rotation updates.
    func stopCamera() {
        cameraWanted = false
        capture.stop()
        listener?.cancel()
        listener = nil
        stopFollowingRotation()
    }

    /// The preview's layer, once it exists: its rotation follows the interface, and so do the frames.
    func attach(_ layer: AVCaptureVideoPreviewLayer) {
        previewLayer = layer
        followRotation()
    }

    /// Keeps the preview upright and passes each frame with the orientation that turns it like the preview, so
    /// the results (in the upright frame) line up with what is on screen in every interface orientation. iOS 17+:
    /// Apple's `AVCaptureDevice.RotationCoordinator` (its preview angle, observed on the main queue); before: the
    /// device orientation. The capture connection itself is never rotated: the SDK turns the pixels.
    private func followRotation() {
        guard let device = capture.device, let layer = previewLayer else { return }  // after configure() and attach
        stopFollowingRotation()
        let front = device.position == .front
        if #available(iOS 17.0, *) {
            let coordinator = AVCaptureDevice.RotationCoordinator(device: device, previewLayer: layer)
            rotationCoordinator = coordinator
            rotationObservation = coordinator.observe(\.videoRotationAngleForHorizonLevelPreview,
                                                      options: [.initial, .new]) { [weak self] coordinator, _ in
                let angle = coordinator.videoRotationAngleForHorizonLevelPreview
                MainActor.assumeIsolated {  // KVO of the coordinator arrives on the main queue
                    self?.apply(rotationAngle: angle, front: front)
                }
            }
        } else {
            UIDevice.current.beginGeneratingDeviceOrientationNotifications()
            deviceOrientationObserver = NotificationCenter.default.addObserver(
                forName: UIDevice.orientationDidChangeNotification, object: nil, queue: .main
            ) { [weak self] _ in
                MainActor.assumeIsolated { self?.followDeviceOrientation(front: front) }
            }
            followDeviceOrientation(front: front)
        }
    }

    private func stopFollowingRotation() {
        rotationObservation?.invalidate()
        rotationObservation = nil
        rotationCoordinator = nil
        if let observer = deviceOrientationObserver {
            NotificationCenter.default.removeObserver(observer)
            UIDevice.current.endGeneratingDeviceOrientationNotifications()
            deviceOrientationObserver = nil
        }
    }

    @available(iOS 17.0, *)
    private func apply(rotationAngle angle: CGFloat, front: Bool) {
        if let connection = previewLayer?.connection, connection.isVideoRotationAngleSupported(angle) {
            connection.videoRotationAngle = angle
        }
        capture.setOrientation(Self.orientation(rotationAngle: angle, mirrored: front))
    }

    private func followDeviceOrientation(front: Bool) {
        let device = UIDevice.current.orientation
        guard let angle = Self.rotationAngle(device, front: front) else { return }
        // the preview's orientation is the interface's: a device turned left shows the interface turned right
        let preview: [UIDeviceOrientation: AVCaptureVideoOrientation] = [
            .portrait: .portrait, .portraitUpsideDown: .portraitUpsideDown, .landscapeLeft: .landscapeRight,
            .landscapeRight: .landscapeLeft,
        ]
        if let connection = previewLayer?.connection, let orientation = preview[device] {
            connection.videoOrientation = orientation  // the API before iOS 17 (deprecated since)
        }
        capture.setOrientation(Self.orientation(rotationAngle: angle, mirrored: front))
    }

    func showStill() {
        stopCamera()
        guard let model, let url = Bundle.module.url(forResource: "sample", withExtension: "jpg"),
              let image = UIImage(contentsOfFile: url.path)?.cgImage else { return }
        still = image
        Task {
            let start = Date()
            do {
                let found = try await model.detect(image)
                show(found, CGSize(width: image.width, height: image.height), Date().timeIntervalSince(start),
                     dropped: 0)
            } catch {
                status = "\(error)"
            }
        }
    }

    private func show(_ result: LiveResult) {
        if let error = result.error {
            status = "\(error)"
            return
        }
        show(result.results, CGSize(width: result.width, height: result.height), result.inferenceTime,
             dropped: result.droppedFrames)
    }

    private func show(_ found: [Detection], _ size: CGSize, _ seconds: TimeInterval, dropped: Int) {
        results = found
        imageSize = size
        status = String(format: "%@ · %.1f ms · %d frames skipped", unitsName, seconds * 1000, dropped)
    }

    private var unitsName: String {
        switch computeUnits {
        case .cpuAndNeuralEngine: return "CPU + Neural Engine"
        case .all: return "all units"
        case .cpuAndGPU: return "CPU + GPU"
        default: return "CPU only"
        }
    }
}

/// The capture session and its video output. Sessions are configured, started and stopped on `queue`, which
/// also receives the frames; each frame goes to the live session at once (`submit` never blocks), so the camera
/// is never held up by inference, with the orientation the main actor last set.
///
/// `@unchecked Sendable`: `session`'s configuration and `configured` are only used on `queue`; `live`,
/// `orientation` and `configuredDevice` only while `lock` is held (the device is written once, on `queue`, and then
/// only read).
final class CaptureController: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate, @unchecked Sendable {
    let session = AVCaptureSession()
    private let queue = DispatchQueue(label: "camera")
    private let lock = NSLock()
    private var live: LiveSession<CameraFrame, LiveResult>?
    private var orientation: CGImagePropertyOrientation = .right
    private var configuredDevice: AVCaptureDevice?
    private var configured = false

    /// The camera in use, once the session is configured.
    var device: AVCaptureDevice? {
        lock.lock()
        defer { lock.unlock() }
        return configuredDevice
    }

    /// The orientation that turns the next frames upright.
    func setOrientation(_ orientation: CGImagePropertyOrientation) {
        lock.lock()
        self.orientation = orientation
        lock.unlock()
    }

    /// Sends frames to `live`; `started` hears that the session runs (and `device` is set), `failed` why the camera
    /// could not start.
    func start(_ live: LiveSession<CameraFrame, LiveResult>, started: @escaping @Sendable () -> Void,
               failed: @escaping @Sendable (String) -> Void) {
        lock.lock()
        self.live = live
        lock.unlock()
        queue.async { [self] in
            if !configured {
                guard configure() else {
                    failed("no camera: use the still image")
                    return
                }
                configured = true
            }
            session.startRunning()
            started()
        }
    }

    /// Closes the live session (its waiting frame is dropped, the running one finishes) and stops the camera.
    func stop() {
        lock.lock()
        let live = self.live
        self.live = nil
        lock.unlock()
        live?.close()
        queue.async { [self] in
            session.stopRunning()
        }
    }

    private func configure() -> Bool {
        guard let device = AVCaptureDevice.default(for: .video),
              let input = try? AVCaptureDeviceInput(device: device) else { return false }
        session.beginConfiguration()
        defer { session.commitConfiguration() }
        session.sessionPreset = .hd1280x720
        guard session.canAddInput(input) else { return false }
        session.addInput(input)
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: queue)
        guard session.canAddOutput(output) else { return false }
        session.addOutput(output)  // its connection keeps the sensor's layout: frames are turned by the SDK
        lock.lock()
        configuredDevice = device
        lock.unlock()
        return true
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer,
                       from connection: AVCaptureConnection) {
        guard let buffer = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        lock.lock()
        let (live, orientation) = (self.live, self.orientation)
        lock.unlock()
        live?.submit(CameraFrame(pixelBuffer: buffer,
                                 timestamp: CMSampleBufferGetPresentationTimeStamp(sampleBuffer).seconds,
                                 orientation: orientation))
    }
}
