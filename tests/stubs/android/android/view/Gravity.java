// Compile-only stub for tests: mirrors the public signature of android.view.Gravity, Android API level 36.
package android.view;

public class Gravity {
    public static final int TOP = 48;
    public static final int BOTTOM = 80;
    public static final int START = 8388611;
    public static final int END = 8388613;
    public static final int CENTER_HORIZONTAL = 1;
}
