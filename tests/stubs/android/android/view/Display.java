// Compile-only stub for tests: mirrors the public signature of android.view.Display (getRotation), Android API level 36.
package android.view;

public final class Display {
    public int getRotation() { throw new UnsupportedOperationException("stub"); }
}
