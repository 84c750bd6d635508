// Compile-only stub for tests: mirrors the public signature of androidx.camera.core.UseCase, androidx.camera 1.6.2.
package androidx.camera.core;

public abstract class UseCase {}
