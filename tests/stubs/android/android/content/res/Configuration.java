// Compile-only stub for tests: mirrors the public signature of android.content.res.Configuration, Android API level 36.
package android.content.res;

public final class Configuration {
    public int orientation;
}
