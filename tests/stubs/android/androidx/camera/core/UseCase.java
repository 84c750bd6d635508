// Compile-only stub for tests: mirrors the public signature of androidx.camera.core.UseCase, androidx.camera 1.4.1.
package androidx.camera.core;

public abstract class UseCase {}
