// Compile-only stub for tests: mirrors the public signature of android.view.Surface (ROTATION_* constants), Android API level 36.
package android.view;

public class Surface {
    public static final int ROTATION_0 = 0;
    public static final int ROTATION_90 = 1;
    public static final int ROTATION_180 = 2;
    public static final int ROTATION_270 = 3;
}
