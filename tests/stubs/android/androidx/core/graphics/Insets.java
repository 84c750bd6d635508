// Compile-only stub for tests: mirrors the public signature of androidx.core.graphics.Insets, androidx.core 1.13.
package androidx.core.graphics;

public final class Insets {
    public final int left = 0;
    public final int top = 0;
    public final int right = 0;
    public final int bottom = 0;
}
