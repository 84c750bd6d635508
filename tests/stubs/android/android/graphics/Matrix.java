// Compile-only stub for tests: mirrors the public signature of android.graphics.Matrix, Android API level 36.
package android.graphics;

public class Matrix {
    public Matrix() { throw new UnsupportedOperationException("stub"); }
    public boolean postRotate(float degrees) { throw new UnsupportedOperationException("stub"); }
}
