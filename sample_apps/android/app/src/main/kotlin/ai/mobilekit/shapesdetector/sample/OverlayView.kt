package ai.mobilekit.shapesdetector.sample

import android.content.Context
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.RectF
import android.view.View
import ai.mobilekit.shapesdetector.Detection

/** Draws detections (original-image pixels) over the preview or the still image, scaled as they are shown. */
class OverlayView(context: Context) : View(context) {
    enum class Fit { FILL, FIT }

    var fit: Fit = Fit.FILL
    private var detections: List<Detection> = emptyList()
    private var imageW = 1
    private var imageH = 1
    private val box = Paint(Paint.ANTI_ALIAS_FLAG)
    private val label = Paint(Paint.ANTI_ALIAS_FLAG)

    init {
        box.setColor(Color.GREEN)
        box.setStyle(Paint.Style.STROKE)
        box.setStrokeWidth(4f)
        label.setColor(Color.GREEN)
        label.setTextSize(36f)
    }

    fun show(detections: List<Detection>, imageWidth: Int, imageHeight: Int) {
        this.detections = detections
        imageW = imageWidth
        imageH = imageHeight
        invalidate()
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val sx = getWidth().toFloat() / imageW
        val sy = getHeight().toFloat() / imageH
        val s = if (fit == Fit.FILL) maxOf(sx, sy) else minOf(sx, sy)
        val dx = (getWidth() - imageW * s) / 2
        val dy = (getHeight() - imageH * s) / 2
        for (d in detections) {
            val r = RectF(d.left * s + dx, d.top * s + dy, d.right * s + dx, d.bottom * s + dy)
            canvas.drawRect(r, box)
            canvas.drawText("${d.label} %.2f".format(d.score), r.left, r.top - 8f, label)
        }
    }
}
