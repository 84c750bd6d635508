// Compile-only stub for tests: mirrors the public signature of android.os.Build (VERSION.SDK_INT, VERSION_CODES), Android API level 36.
package android.os;

public class Build {
    public static class VERSION {
        public static final int SDK_INT = 0;
    }
    public static class VERSION_CODES {
        public static final int O = 26;
        public static final int O_MR1 = 27;
        public static final int R = 30;
        public static final int VANILLA_ICE_CREAM = 35;
        public static final int BAKLAVA = 36;
    }
}
