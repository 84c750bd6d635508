// Compile-only stub for tests: mirrors the public signature of androidx.core.view.OnApplyWindowInsetsListener, androidx.core 1.13.
package androidx.core.view;

import android.view.View;

public interface OnApplyWindowInsetsListener {
    WindowInsetsCompat onApplyWindowInsets(View v, WindowInsetsCompat insets);
}
