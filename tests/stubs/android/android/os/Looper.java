// Compile-only stub for tests: mirrors the public signature of android.os.Looper (myLooper, getMainLooper), Android API level 36.
package android.os;

public final class Looper {
    public static Looper myLooper() { throw new UnsupportedOperationException("stub"); }
    public static Looper getMainLooper() { throw new UnsupportedOperationException("stub"); }
}
