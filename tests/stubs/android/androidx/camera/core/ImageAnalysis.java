// Compile-only stub for tests: mirrors the public signature of androidx.camera.core.ImageAnalysis, androidx.camera 1.6.2.
package androidx.camera.core;

import java.util.concurrent.Executor;

public final class ImageAnalysis extends UseCase {
    public static final int STRATEGY_KEEP_ONLY_LATEST = 0;
    public static final int STRATEGY_BLOCK_PRODUCER = 1;
    public static final int OUTPUT_IMAGE_FORMAT_YUV_420_888 = 1;
    public static final int OUTPUT_IMAGE_FORMAT_RGBA_8888 = 2;
    public interface Analyzer {
        void analyze(ImageProxy image);
    }
    public void setAnalyzer(Executor executor, Analyzer analyzer) { throw new UnsupportedOperationException("stub"); }
    public int getTargetRotation() { throw new UnsupportedOperationException("stub"); }
    public void setTargetRotation(int rotation) { throw new UnsupportedOperationException("stub"); }
    public void clearAnalyzer() { throw new UnsupportedOperationException("stub"); }
    public static final class Builder {
        public Builder() { throw new UnsupportedOperationException("stub"); }
        public Builder setBackpressureStrategy(int strategy) { throw new UnsupportedOperationException("stub"); }
        public Builder setTargetRotation(int rotation) { throw new UnsupportedOperationException("stub"); }
        public Builder setOutputImageFormat(int outputImageFormat) { throw new UnsupportedOperationException("stub"); }
        public ImageAnalysis build() { throw new UnsupportedOperationException("stub"); }
    }
}
