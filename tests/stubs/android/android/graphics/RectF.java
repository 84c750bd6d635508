// Compile-only stub for tests: mirrors the public signature of android.graphics.RectF, Android API level 36.
package android.graphics;

public class RectF {
    public float left;
    public float top;
    public float right;
    public float bottom;
    public RectF(float left, float top, float right, float bottom) { throw new UnsupportedOperationException("stub"); }
}
