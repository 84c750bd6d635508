// Compile-only stub for tests: mirrors the public signature of android.graphics.Bitmap, Android API level 35.
package android.graphics;

public final class Bitmap {
    public static Bitmap createBitmap(Bitmap source, int x, int y, int width, int height, Matrix m, boolean filter) {
        throw new UnsupportedOperationException("stub");
    }
    public final int getWidth() { throw new UnsupportedOperationException("stub"); }
    public final int getHeight() { throw new UnsupportedOperationException("stub"); }
    public void getPixels(int[] pixels, int offset, int stride, int x, int y, int width, int height) {
        throw new UnsupportedOperationException("stub");
    }
}
