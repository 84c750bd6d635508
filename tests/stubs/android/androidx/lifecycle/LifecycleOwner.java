// Compile-only stub for tests: mirrors the public signature of androidx.lifecycle.LifecycleOwner, androidx.lifecycle 2.8.
package androidx.lifecycle;

public interface LifecycleOwner {}
