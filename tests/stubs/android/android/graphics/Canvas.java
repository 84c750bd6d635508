// Compile-only stub for tests: mirrors the public signature of android.graphics.Canvas, Android API level 36.
package android.graphics;

public class Canvas {
    public void drawRect(RectF rect, Paint paint) { throw new UnsupportedOperationException("stub"); }
    public void drawText(String text, float x, float y, Paint paint) { throw new UnsupportedOperationException("stub"); }
}
