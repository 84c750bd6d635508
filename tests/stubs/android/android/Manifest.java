// Compile-only stub for tests: mirrors the public signature of android.Manifest, Android API level 36.
package android;

public final class Manifest {
    public static final class permission {
        public static final String CAMERA = "android.permission.CAMERA";
    }
}
