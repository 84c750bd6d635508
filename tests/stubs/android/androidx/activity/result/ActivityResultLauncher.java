// Compile-only stub for tests: mirrors the public signature of androidx.activity.result.ActivityResultLauncher, androidx.activity 1.9.
package androidx.activity.result;

public abstract class ActivityResultLauncher<I> {
    public void launch(I input) { throw new UnsupportedOperationException("stub"); }
}
