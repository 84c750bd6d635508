import AVFoundation
import SwiftUI
import ShapesDetectorKit

/// Camera preview (or the still image) with boxes and labels drawn over
/// it, the compute units and the inference time.
struct ContentView: View {
    @StateObject private var camera = Camera()
    @State private var cameraMode = true

    /// Where the still image sits when it does not fill the screen: the overlay maps boxes with the same value.
    private static let stillAlignment = ImageLayout.Alignment.top
    private static var stillFrameAlignment: Alignment {
        switch stillAlignment {
        case .top: return .top
        case .center: return .center
        case .bottom: return .bottom
        }
    }

    var body: some View {
        ZStack(alignment: .top) {
            if let still = camera.still {
                Image(decorative: still, scale: 1.0)
                    .resizable()
                    .scaledToFit()
                    .frame(maxWidth: .infinity, maxHeight: .infinity, alignment: Self.stillFrameAlignment)
            } else if camera.access == .denied || camera.access == .restricted {
                VStack(spacing: 12) {
                    Text(camera.access == .denied ? "Camera access is off for this app."
                                                  : "The camera is restricted on this device.")
                        .foregroundColor(.white)
                    if camera.access == .denied {
                        Button("Open Settings") { camera.openSettings() }
                    }
                }
                .frame(maxWidth: .infinity, maxHeight: .infinity, alignment: .center)
                .background(Color.black)
            } else {
                CameraPreview(camera: camera)
            }
            GeometryReader { geometry in
                ForEach(camera.results.indices, id: \.self) { i in
                    let r = place(camera.results[i].rect, in: geometry.size)
                    Rectangle()
                        .stroke(Color.green, lineWidth: 2)
                        .frame(width: r.width, height: r.height)
                        .position(x: r.midX, y: r.midY)
                    Text(String(format: "%@ %.2f", camera.results[i].label, camera.results[i].score))
                        .font(.caption)
                        .foregroundColor(.green)
                        .position(x: r.midX, y: max(r.minY - 8, 8))
                }
            }
            VStack(spacing: 8) {
                Text(camera.status)
                    .font(.caption)
                    .padding(8)
                    .background(Color.black.opacity(0.6))
                    .foregroundColor(.white)
                Spacer()
                Button(cameraMode ? "Still image" : "Camera") {
                    cameraMode.toggle()
                    if cameraMode { camera.startCamera() } else { camera.showStill() }
                }
                .padding()
            }
        }
        .onAppear { camera.startCamera() }
        .onDisappear { camera.stopCamera() }
    }

    /// Upright image pixels → view points, with the geometry the image is shown with (`ImageLayout`, tested in the
    /// package): the still image fitted and aligned as `stillAlignment` lays it out, the camera preview filling the
    /// view, centred (`.resizeAspectFill`). Each result carries the size of its own upright frame, so boxes stay
    /// right while the interface turns.
    private func place(_ rect: CGRect, in size: CGSize) -> CGRect {
        let layout = camera.still == nil
            ? ImageLayout(imageSize: camera.imageSize, viewSize: size, scaling: .fill, alignment: .center)
            : ImageLayout(imageSize: camera.imageSize, viewSize: size, scaling: .fit, alignment: Self.stillAlignment)
        return layout.rect(rect)
    }
}

/// AVCaptureVideoPreviewLayer in SwiftUI; its layer is handed to `Camera`, which keeps it (and the frames)
/// turned with the interface.
struct CameraPreview: UIViewRepresentable {
    let camera: Camera

    final class PreviewView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var previewLayer: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }
    }

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.previewLayer.session = camera.capture.session
        view.previewLayer.videoGravity = .resizeAspectFill
        camera.attach(view.previewLayer)
        return view
    }

    func updateUIView(_ uiView: PreviewView, context: Context) {}
}
