// Compile-only stub for tests: mirrors the public signature of androidx.camera.core.Preview, androidx.camera 1.6.2.
package androidx.camera.core;

public final class Preview extends UseCase {
    public interface SurfaceProvider {}
    public void setSurfaceProvider(SurfaceProvider surfaceProvider) { throw new UnsupportedOperationException("stub"); }
    public static final class Builder {
        public Builder() { throw new UnsupportedOperationException("stub"); }
        public Preview build() { throw new UnsupportedOperationException("stub"); }
    }
}
