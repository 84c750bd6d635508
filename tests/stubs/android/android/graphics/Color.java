// Compile-only stub for tests: mirrors the public signature of android.graphics.Color, Android API level 36.
package android.graphics;

public class Color {
    public static final int GREEN = 0xFF00FF00;
    public static final int WHITE = 0xFFFFFFFF;
    public static final int BLACK = 0xFF000000;
    public static int argb(int alpha, int red, int green, int blue) { throw new UnsupportedOperationException("stub"); }
}
