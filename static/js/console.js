/* ConvoSuite console: small enhancements for every console and platform page (no dependencies, no inline
   handlers: the Content-Security-Policy allows only our own static scripts). */
(function () {
  "use strict";
})();
