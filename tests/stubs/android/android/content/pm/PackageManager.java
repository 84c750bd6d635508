// Compile-only stub for tests: mirrors the public signature of android.content.pm.PackageManager, Android API level 36.
package android.content.pm;

public abstract class PackageManager {
    public static final int PERMISSION_GRANTED = 0;
    public static final int PERMISSION_DENIED = -1;
}
