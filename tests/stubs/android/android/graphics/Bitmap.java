// Compile-only stub for tests: mirrors the public signature of android.graphics.Bitmap, Android API level 36.
package android.graphics;

public final class Bitmap {
    public enum Config {
        ALPHA_8, RGB_565, @Deprecated ARGB_4444, ARGB_8888, RGBA_F16, HARDWARE, RGBA_1010102
    }
    public static Bitmap createBitmap(Bitmap source, int x, int y, int width, int height, Matrix m, boolean filter) {
        throw new UnsupportedOperationException("stub");
    }
    public final int getWidth() { throw new UnsupportedOperationException("stub"); }
    public final int getHeight() { throw new UnsupportedOperationException("stub"); }
    public final Config getConfig() { throw new UnsupportedOperationException("stub"); }
    public Bitmap copy(Config config, boolean isMutable) { throw new UnsupportedOperationException("stub"); }
    public void recycle() { throw new UnsupportedOperationException("stub"); }
    public void getPixels(int[] pixels, int offset, int stride, int x, int y, int width, int height) {
        throw new UnsupportedOperationException("stub");
    }
}
