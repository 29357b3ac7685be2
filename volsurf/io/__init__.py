"""volsurf.io"""
