// Compile-only stub for tests: mirrors the public signature of android.os.Bundle, Android API level 36.
package android.os;

public final class Bundle {}
