package ai.mobilekit.shapesdetector.sample

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.BitmapFactory
import android.graphics.Color
import android.os.Bundle
import android.view.OrientationEventListener
import android.view.Surface
import android.view.Gravity
import android.view.ViewGroup.LayoutParams.MATCH_PARENT
import android.view.ViewGroup.LayoutParams.WRAP_CONTENT
import android.widget.Button
import android.widget.FrameLayout
import android.widget.ImageView
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.result.contract.ActivityResultContracts
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import androidx.core.view.ViewCompat
import androidx.core.view.WindowInsetsCompat
import ai.mobilekit.shapesdetector.Detection
import ai.mobilekit.shapesdetector.ShapesDetector
import ai.mobilekit.shapesdetector.Orientation
import ai.mobilekit.shapesdetector.LiveListener
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Live detection on the camera (CameraX preview + analysis) with the
 * backend LiteRT chose and the frames processed / dropped on screen, and a still-image mode on a bundled picture.
 * The model loads off the UI thread and runs on the SDK's own thread; the camera thread only hands frames over
 * (latest frame wins). UI built in code: one file to read.
 */
class MainActivity : ComponentActivity() {
    private var model: ShapesDetector? = null
    @Volatile private var stream: ShapesDetector.LiveStream? = null
    private lateinit var preview: PreviewView
    private lateinit var still: ImageView
    private lateinit var overlay: OverlayView
    private lateinit var status: TextView
    private lateinit var toggle: Button
    /** CameraX delivers frames here; it never waits for the model. */
    private val cameraExecutor: ExecutorService = Executors.newSingleThreadExecutor()
    private var provider: ProcessCameraProvider? = null
    private var analysis: ImageAnalysis? = null
    private var cameraMode = true
    /** Upright size of each frame in flight, by timestamp: a result is drawn on its own frame's geometry. */
    private val frameSizes = ConcurrentHashMap<Long, Pair<Int, Int>>()

    /** The frames' rotation, from one source: the device's orientation (as CameraX's guide does). A 180-degree turn
     *  changes no configuration, and a second source (the display's rotation on configuration changes) would
     *  fight this one when the phone is upside down. */
    private val turns by lazy {
        object : OrientationEventListener(this) {
            override fun onOrientationChanged(orientation: Int) {
                if (orientation == ORIENTATION_UNKNOWN) return
                analysis?.setTargetRotation(when (orientation) {
                    in 45 until 135 -> Surface.ROTATION_270
                    in 135 until 225 -> Surface.ROTATION_180
                    in 225 until 315 -> Surface.ROTATION_90
                    else -> Surface.ROTATION_0
                })
            }
        }
    }

    private val cameraPermission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else showStill("camera permission denied: still image")
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val root = FrameLayout(this)
        preview = PreviewView(this)
        still = ImageView(this)
        still.setScaleType(ImageView.ScaleType.FIT_CENTER)
        overlay = OverlayView(this)
        status = TextView(this)
        status.setTextColor(Color.WHITE)
        status.setBackgroundColor(Color.argb(160, 0, 0, 0))
        status.setPadding(24, 12, 24, 12)
        status.setText("loading the model…")
        toggle = Button(this)
        toggle.setOnClickListener { if (cameraMode) showStill(null) else requestCamera() }
        root.addView(preview, FrameLayout.LayoutParams(MATCH_PARENT, MATCH_PARENT))
        root.addView(still, FrameLayout.LayoutParams(MATCH_PARENT, MATCH_PARENT))
        root.addView(overlay, FrameLayout.LayoutParams(MATCH_PARENT, MATCH_PARENT))
        root.addView(status, FrameLayout.LayoutParams(MATCH_PARENT, WRAP_CONTENT, Gravity.TOP))
        root.addView(toggle, FrameLayout.LayoutParams(WRAP_CONTENT, WRAP_CONTENT, Gravity.BOTTOM or Gravity.END))
        // Edge to edge (enforced from Android 15 at targetSdk 35+): keep text and button clear of the system bars.
        ViewCompat.setOnApplyWindowInsetsListener(root) { _, insets ->
            val bars = insets.getInsets(WindowInsetsCompat.Type.systemBars() or WindowInsetsCompat.Type.displayCutout())
            status.setPadding(24 + bars.left, 12 + bars.top, 24 + bars.right, 12)
            toggle.setPadding(24, 12, 24 + bars.right, 12 + bars.bottom)
            insets
        }
        setContentView(root)
        // Loading compiles the model for its accelerator (up to seconds on a GPU or NPU): never on the UI thread.
        cameraExecutor.execute {
            val loaded = runCatching { ShapesDetector.create(applicationContext) }
            runOnUiThread {
                loaded.onFailure { status.setText("the model did not load: ${it.message}") }
                loaded.onSuccess { m ->
                    if (isDestroyed) {
                        m.close()
                    } else {
                        model = m
                        stream = m.liveStream(live)
                        requestCamera()
                    }
                }
            }
        }
    }

    /** Live results (on the model's thread): shown on the UI thread with their frame's size. */
    private val live = object : LiveListener<List<Detection>> {
        override fun onResult(result: List<Detection>, timestampMs: Long) = post(Result.success(result), timestampMs)

        override fun onError(error: Throwable, timestampMs: Long) = post(Result.failure(error), timestampMs)

        private fun post(result: Result<List<Detection>>, timestampMs: Long) {
            val size = frameSizes.remove(timestampMs) ?: return
            frameSizes.keys.removeAll { it < timestampMs }  // dropped frames
            runOnUiThread { if (cameraMode) show(result, size.first, size.second, null) }
        }
    }

    private fun requestCamera() {
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            cameraPermission.launch(Manifest.permission.CAMERA)
        }
    }

    private fun startCamera() {
        cameraMode = true
        toggle.setText("Still image")
        still.setImageBitmap(null)
        overlay.fit = OverlayView.Fit.FILL  // PreviewView's default FILL_CENTER
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val cameraProvider = future.get()
            provider = cameraProvider
            val previewUseCase = Preview.Builder().build()
            previewUseCase.setSurfaceProvider(preview.getSurfaceProvider())
            val useCase = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .build()  // YUV_420_888: the SDK reads the planes directly
            turns.enable()  // the one source of the frames' rotation
            useCase.setAnalyzer(cameraExecutor) { image -> analyze(image) }
            analysis = useCase
            cameraProvider.unbindAll()
            cameraProvider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, previewUseCase, useCase)
        }, ContextCompat.getMainExecutor(this))
    }

    /** On the camera thread: hand the frame to the model and return at once; the SDK closes it when done. */
    private fun analyze(image: ImageProxy) {
        val live = stream
        if (live == null) {
            image.close()
            return
        }
        val timestampMs = image.getImageInfo().getTimestamp() / 1_000_000
        val turned = Orientation(image.getImageInfo().getRotationDegrees()).swapsAxes
        frameSizes[timestampMs] = if (turned) Pair(image.getHeight(), image.getWidth()) else Pair(image.getWidth(), image.getHeight())
        if (!live.send(image)) frameSizes.remove(timestampMs)
    }

    private fun showStill(note: String?) {
        val loaded = model ?: return
        cameraMode = false
        provider?.unbindAll()
        turns.disable()
        toggle.setText("Camera")
        val bitmap = assets.open("sample.jpg").use { BitmapFactory.decodeStream(it) }
        still.setImageBitmap(bitmap)
        overlay.fit = OverlayView.Fit.FIT  // ImageView FIT_CENTER
        cameraExecutor.execute {
            val result = runCatching { loaded.detectBlocking(bitmap) }
            runOnUiThread { show(result, bitmap.width, bitmap.height, note) }
        }
    }

    /** On the UI thread: the status line and the boxes (upright frame of width x height). */
    private fun show(result: Result<List<Detection>>, width: Int, height: Int, note: String?) {
        val loaded = model ?: return
        val text = result.fold({ items ->
            overlay.show(items, width, height)
            "%d objects".format(items.size)
        }, { "error: ${it.message}" })
        val counts = stream?.let { "${it.processed} frames run, ${it.dropped} dropped" }
        val timing = "%s · %.1f ms".format(loaded.backend, loaded.lastInferenceMs)
        status.setText(listOfNotNull("$timing · $text", counts, loaded.fallbackReason, note).joinToString("\n"))
    }

    override fun onDestroy() {
        super.onDestroy()
        turns.disable()
        provider?.unbindAll()
        cameraExecutor.shutdown()
        stream?.close()
        model?.close()  // safe while a frame is running: the SDK releases the model after it
    }
}
