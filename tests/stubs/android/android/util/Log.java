// Compile-only stub for tests: mirrors the public signature of android.util.Log, Android API level 36.
package android.util;

public final class Log {
    public static int w(String tag, String msg, Throwable tr) { throw new UnsupportedOperationException("stub"); }
    public static int w(String tag, String msg) { return 0; }
    public static int i(String tag, String msg) { return 0; }
}
