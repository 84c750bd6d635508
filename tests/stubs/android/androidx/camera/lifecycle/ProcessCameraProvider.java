// Compile-only stub for tests: mirrors the public signature of androidx.camera.lifecycle.ProcessCameraProvider, androidx.camera 1.6.2.
package androidx.camera.lifecycle;

import android.content.Context;
import androidx.camera.core.Camera;
import androidx.camera.core.CameraSelector;
import androidx.camera.core.UseCase;
import androidx.lifecycle.LifecycleOwner;
import com.google.common.util.concurrent.ListenableFuture;

public final class ProcessCameraProvider {
    public static ListenableFuture<ProcessCameraProvider> getInstance(Context context) { throw new UnsupportedOperationException("stub"); }
    public Camera bindToLifecycle(LifecycleOwner lifecycleOwner, CameraSelector cameraSelector, UseCase... useCases) {
        throw new UnsupportedOperationException("stub");
    }
    public void unbindAll() { throw new UnsupportedOperationException("stub"); }
}
