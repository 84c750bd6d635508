// Compile-only stub for tests: mirrors the public signature of android.graphics.Paint, Android API level 36.
package android.graphics;

public class Paint {
    public enum Style { FILL, STROKE, FILL_AND_STROKE }
    public static final int ANTI_ALIAS_FLAG = 1;
    public Paint(int flags) { throw new UnsupportedOperationException("stub"); }
    public void setColor(int color) { throw new UnsupportedOperationException("stub"); }
    public void setStyle(Style style) { throw new UnsupportedOperationException("stub"); }
    public void setStrokeWidth(float width) { throw new UnsupportedOperationException("stub"); }
    public void setTextSize(float textSize) { throw new UnsupportedOperationException("stub"); }
}
